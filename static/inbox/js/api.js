// The inbox REST API (CONTRACT section 5) over the Django session: same-origin cookies, CSRF header on writes.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.code) || null;
    this.body = body;
  }

  /** Worth sending again with the same client_id: the server may not have stored it. */
  get retryable() {
    return this.status >= 500 || this.status === 429 || this.status === 408;
  }
}

/** The request never got an answer (offline, connection reset): the same client_id may be sent again. */
export class NetworkError extends Error {
  get retryable() {
    return true;
  }
}

let onUnauthenticated = () => {};

export function setUnauthenticatedHandler(fn) {
  onUnauthenticated = fn;
}

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

export function csrfToken() {
  return cookie("csrftoken") || document.querySelector('meta[name="csrf-token"]')?.content || "";
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== null && value !== undefined && value !== "") search.set(key, String(value));
  }
  const s = search.toString();
  return s ? `?${s}` : "";
}

export async function request(method, path, {json, form, params, signal} = {}) {
  const headers = {Accept: "application/json"};
  let body;
  if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = csrfToken();
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form; // the browser sets the multipart boundary
  }
  let response;
  try {
    response = await fetch(path + query(params), {method, headers, body, credentials: "same-origin", signal,
                                                  cache: "no-store"});
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new NetworkError(error.message || "network error");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = {detail: text.slice(0, 200)};
    }
  }
  if (!response.ok) {
    if (response.status === 401) onUnauthenticated();
    throw new ApiError(response.status, data);
  }
  return data;
}

const C = "/api/inbox/conversations";

export const api = {
  me: () => request("GET", "/api/inbox/me"),
  updateMe: (changes) => request("PATCH", "/api/inbox/me", {json: changes}),
  advisors: () => request("GET", "/api/inbox/advisors"),
  conversations: (params, signal) => request("GET", C, {params, signal}),
  conversation: (id) => request("GET", `${C}/${id}`),
  messages: (id, params, signal) => request("GET", `${C}/${id}/messages`, {params, signal}),
  send: (id, body) => request("POST", `${C}/${id}/messages`, {json: body}),
  sendImage: (id, {file, clientId, kind}) => {
    const form = new FormData();
    form.append("image", file, file.name || "image");
    form.append("client_id", clientId);
    if (kind && kind !== "text") form.append("kind", kind);
    return request("POST", `${C}/${id}/messages`, {form});
  },
  take: (id) => request("POST", `${C}/${id}/take`, {json: {}}),
  assign: (id, username) => request("POST", `${C}/${id}/assign`, {json: {advisor: username}}),
  close: (id) => request("POST", `${C}/${id}/close`, {json: {}}),
  reopen: (id) => request("POST", `${C}/${id}/reopen`, {json: {}}),
  read: (id, seq) => request("POST", `${C}/${id}/read`, {json: {seq}}),
};

/** The advisors endpoint's list, whether it answers a bare list or wraps it. */
export function advisorList(data) {
  if (Array.isArray(data)) return data;
  if (data && Array.isArray(data.results)) return data.results;
  if (data && Array.isArray(data.advisors)) return data.advisors;
  return [];
}

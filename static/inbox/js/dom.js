// Building DOM safely: every string that came from the API goes in as text, never as markup.
// There is deliberately no helper here that takes HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * h("div", {class: "x", dataset: {id: 3}, onclick: fn}, "text", child, [children])
 * Strings and numbers become text nodes; attributes are set one by one (never innerHTML).
 */
export function h(tag, attrs = null, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key === "text") el.textContent = value;
      else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
      else if (key === "href" || key === "src") throw new Error("use link() or image() for URLs");
      else el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

export function setText(el, text) {
  el.textContent = text ?? "";
  return el;
}

/** An absolute http(s) URL, or null for anything else (javascript:, data:, relative, garbage). */
export function safeHttpUrl(value) {
  if (typeof value !== "string" || !value) return null;
  let url;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
}

/** A link to an http(s) URL opening in a new tab, or plain text when the URL is anything else. */
export function link(url, text = url, attrs = {}) {
  const href = safeHttpUrl(url);
  if (!href) return document.createTextNode(text ?? "");
  const a = h("a", {target: "_blank", rel: "noopener noreferrer", ...attrs}, text);
  a.href = href;
  return a;
}

/** An <img> for an http(s) or blob: URL; null otherwise. */
export function image(url, attrs = {}) {
  const src = url && url.startsWith && url.startsWith("blob:") ? url : safeHttpUrl(url);
  if (!src) return null;
  const img = h("img", {loading: "lazy", decoding: "async", ...attrs});
  img.src = src;
  return img;
}

const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/gi;

/** Text with its http(s) URLs turned into links; everything else stays text. */
export function linkify(text) {
  const out = document.createDocumentFragment();
  const source = text ?? "";
  let last = 0;
  for (const match of source.matchAll(URL_RE)) {
    let url = match[0];
    const trail = url.match(/[.,;:!?)\]}]+$/);
    if (trail) url = url.slice(0, -trail[0].length);
    const start = match.index;
    if (start > last) out.append(source.slice(last, start));
    out.append(link(url, url));
    last = start + url.length;
  }
  if (last < source.length) out.append(source.slice(last));
  return out;
}

/** A fixed icon from a path list (our own constants, never data). */
export function icon(paths, {stroke = true, cls = ""} = {}) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  if (cls) svg.setAttribute("class", cls);
  for (const d of paths) {
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", d);
    if (stroke) path.setAttribute("class", "stroke");
    svg.append(path);
  }
  return svg;
}

export const ICONS = {
  check: ["M5 12.5l4.5 4.5L19 7.5"],
  image: ["M4 17l5-5 4 4 3-3 4 4", "M4 5h16v14H4z"],
  note: ["M6 4h9l4 4v12H6z", "M14 4v5h5", "M9 13h7M9 16h5"],
  bot: ["M7 8h10a3 3 0 0 1 3 3v5a3 3 0 0 1-3 3H7a3 3 0 0 1-3-3v-5a3 3 0 0 1 3-3z", "M12 4v4", "M9.5 13v1M14.5 13v1"],
  close: ["M6 6l12 12M18 6L6 18"],
  person: ["M12 12a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7z", "M5.5 19.5a6.5 6.5 0 0 1 13 0"],
};

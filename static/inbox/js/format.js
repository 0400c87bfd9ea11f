// Times, names and colours for display.

const timeFmt = new Intl.DateTimeFormat(undefined, {hour: "2-digit", minute: "2-digit"});
const dayFmt = new Intl.DateTimeFormat(undefined, {weekday: "short"});
const dateFmt = new Intl.DateTimeFormat(undefined, {day: "numeric", month: "short"});
const longFmt = new Intl.DateTimeFormat(undefined, {dateStyle: "medium", timeStyle: "short"});
const fullDayFmt = new Intl.DateTimeFormat(undefined, {weekday: "long", day: "numeric", month: "long"});

export function parseTime(ts) {
  if (!ts) return null;
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? null : d;
}

function startOfDay(d) {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}

/** Short time for a list row: "now", "5 min", "14:32", "Mon", "24 Nov". */
export function shortTime(ts, now = new Date()) {
  const d = parseTime(ts);
  if (!d) return "";
  const seconds = (now - d) / 1000;
  if (seconds < 60) return "now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  const days = Math.round((startOfDay(now) - startOfDay(d)) / 86400000);
  if (days === 0) return timeFmt.format(d);
  if (days < 7) return dayFmt.format(d);
  return dateFmt.format(d);
}

export function clockTime(ts) {
  const d = parseTime(ts);
  return d ? timeFmt.format(d) : "";
}

export function longTime(ts) {
  const d = parseTime(ts);
  return d ? longFmt.format(d) : "";
}

/** "Today", "Yesterday" or "Monday 23 November" for day separators. */
export function dayLabel(ts, now = new Date()) {
  const d = parseTime(ts);
  if (!d) return "";
  const days = Math.round((startOfDay(now) - startOfDay(d)) / 86400000);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  return fullDayFmt.format(d);
}

export function dayKey(ts) {
  const d = parseTime(ts);
  return d ? `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}` : "";
}

/** Up to two initials from the first words that start with a letter; "#12" for an anonymous "Visitor #12". */
export function initials(name) {
  const anonymous = /^Visitor #(\d+)$/.exec(String(name ?? ""));
  if (anonymous) return `#${anonymous[1].slice(-2)}`;
  const words = String(name ?? "")
    .split(/\s+/)
    .map((w) => w.replace(/^[^\p{L}\p{N}]+/u, ""))
    .filter((w) => /^[\p{L}]/u.test(w));
  const letters = words.slice(0, 2).map((w) => Array.from(w)[0].toUpperCase());
  return letters.join("") || "?";
}

/** A stable hue for a string or number, for avatar backgrounds. */
export function hue(seed) {
  const s = String(seed ?? "");
  let hash = 0;
  for (let i = 0; i < s.length; i++) hash = (hash * 31 + s.charCodeAt(i)) | 0;
  hash = Math.imul(hash ^ (hash >>> 15), 0x2c1b3c6d); // spread neighbours ("5", "6") far apart
  hash = Math.imul(hash ^ (hash >>> 12), 0x297a2d39);
  return Math.abs(hash ^ (hash >>> 15)) % 360;
}

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

// Times, names and colours for display, in the page's language (i18n.js: LOCALE follows <html lang>).

import {LOCALE, format, gettext} from "./i18n.js";

const timeFmt = new Intl.DateTimeFormat(LOCALE, {hour: "2-digit", minute: "2-digit"});
const dayFmt = new Intl.DateTimeFormat(LOCALE, {weekday: "short"});
const dateFmt = new Intl.DateTimeFormat(LOCALE, {day: "numeric", month: "short"});
const longFmt = new Intl.DateTimeFormat(LOCALE, {dateStyle: "medium", timeStyle: "short"});
const fullDayFmt = new Intl.DateTimeFormat(LOCALE, {weekday: "long", day: "numeric", month: "long"});
const numberFmt = new Intl.NumberFormat(LOCALE, {maximumFractionDigits: 2});

/** A number the page's way: 4.5 in English, 4,5 in French. */
export function number(n) {
  return typeof n === "number" ? numberFmt.format(n) : String(n ?? "");
}

export function parseTime(ts) {
  if (!ts) return null;
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? null : d;
}

function startOfDay(d) {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}

/** Short time for a list row: "now", "5 min", "14:32", "Mon", "24 Nov" (French: "à l'instant", "5 min", "14:32",
 * "lun.", "24 nov."). */
export function shortTime(ts, now = new Date()) {
  const d = parseTime(ts);
  if (!d) return "";
  const seconds = (now - d) / 1000;
  if (seconds < 60) return gettext("now");
  if (seconds < 3600) return format(gettext("%(minutes)s min"), {minutes: Math.floor(seconds / 60)});
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

/** "Today", "Yesterday" or "Monday 23 November" (the page's language) for day separators. */
export function dayLabel(ts, now = new Date()) {
  const d = parseTime(ts);
  if (!d) return "";
  const days = Math.round((startOfDay(now) - startOfDay(d)) / 86400000);
  if (days === 0) return gettext("Today");
  if (days === 1) return gettext("Yesterday");
  return fullDayFmt.format(d);
}

export function dayKey(ts) {
  const d = parseTime(ts);
  return d ? `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}` : "";
}

/** "Visitor #12" in the page's language, for a visitor without a name. */
export function anonymousName(id) {
  return format(gettext("Visitor #%(id)s"), {id: id ?? "?"});
}

/** Up to two initials from the first words that start with a letter; "#12" for an anonymous "Visitor #12" (the
 * server's English name, or the page's own in its language). */
export function initials(name) {
  const digits = /(\d+)$/.exec(String(name ?? ""));
  if (digits && (name === `Visitor #${digits[1]}` || name === anonymousName(digits[1]))) {
    return `#${digits[1].slice(-2)}`;
  }
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

// The reports page (/inbox/reports/): GET /api/inbox/reports (CONTRACT section 7) drawn as cards, inline SVG
// charts (no library: a few dozen rectangles) and tables. Every chart has its numbers as a table beside it, for
// screen readers and for copying. Strings from the API go in as text, never as markup.
import {advisorList, api, request} from "./api.js";
import {clear, h} from "./dom.js";
import {number} from "./format.js";
import {LOCALE, format, gettext, ngettext, pgettext} from "./i18n.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const SERIES = [["started", gettext("Started")], ["escalated", gettext("Escalated")], ["closed", gettext("Closed")]];
const FACES = {1: gettext("Very bad"), 2: gettext("Bad"), 3: gettext("OK"), 4: gettext("Good"), 5: gettext("Very good")};
// A report's day ("2026-11-24") as the page's language writes it: "Nov 24", "24 nov."; the date is the account's
// day, not an instant, so it is formatted in UTC where it cannot shift.
const DAY = new Intl.DateTimeFormat(LOCALE, {day: "numeric", month: "short", timeZone: "UTC"});
const FULL_DAY = new Intl.DateTimeFormat(LOCALE, {dateStyle: "medium", timeZone: "UTC"});

const $ = (id) => document.getElementById(id);
const form = $("filters");
const staff = document.body.dataset.staff === "1";

function svg(tag, attrs = {}, text = null) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  if (text !== null) el.textContent = String(text);
  return el;
}

const UNITS = {
  s: (n) => format(pgettext("seconds", "%(n)s s"), {n}),
  min: (n) => format(pgettext("minutes", "%(n)s min"), {n}),
  h: (n) => format(pgettext("hours", "%(n)s h"), {n}),
  d: (n) => format(pgettext("days", "%(n)s d"), {n}),
};

/** 45 s, 3 min 20 s, 1 h 5 min, 2 d 3 h (French: 2 j 3 h); an em dash when there is nothing to measure. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  const two = (big, bigUnit, small, smallUnit) => (small ? `${UNITS[bigUnit](big)} ${UNITS[smallUnit](small)}` :
    UNITS[bigUnit](big));
  if (s < 60) return UNITS.s(s);
  if (s < 3600) return two(Math.floor(s / 60), "min", s % 60, "s");
  if (s < 86400) return two(Math.floor(s / 3600), "h", Math.floor((s % 3600) / 60), "min");
  return two(Math.floor(s / 86400), "d", Math.floor((s % 86400) / 3600), "h");
}

/** "2026-11-24" as the page's language writes a day, short or medium. */
function dayName(date, long = false) {
  const d = new Date(`${date}T00:00:00Z`);
  return Number.isNaN(d.getTime()) ? date : (long ? FULL_DAY : DAY).format(d);
}

// Counts of conversations, each agreeing with its number (French: "1 fermée", "2 fermées").
const STARTED = (n) => format(ngettext("%(count)s started", "%(count)s started", n), {count: n});
const ESCALATED = (n) => format(ngettext("%(count)s escalated", "%(count)s escalated", n), {count: n});
const CLOSED = (n) => format(ngettext("%(count)s closed", "%(count)s closed", n), {count: n});

/** "4.5 / 5" (French "4,5 / 5"). */
function outOfFive(average) {
  return format(gettext("%(score)s / 5"), {score: number(average)});
}

function params() {
  const data = new FormData(form);
  const out = {};
  for (const [key, value] of data.entries()) if (value) out[key] = value;
  return out;
}

function card(title, value, sub) {
  return h("article", {class: "rp-card"}, h("h3", null, title), h("p", {class: "rp-card__value"}, value),
           sub ? h("p", {class: "rp-card__sub"}, sub) : null);
}

function niceMax(value) {
  if (value <= 4) return 4;
  const step = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= value) return m * step;
  return 10 * step;
}

function dataTable(caption, head, rows) {
  return h("details", {class: "rp-data"}, h("summary", null, caption),
           h("table", {class: "rp-table"}, h("thead", null, h("tr", null, head.map((c) => h("th", {scope: "col"}, c)))),
             h("tbody", null, rows.map((r) => h("tr", null, r.map((c) => h("td", null, c)))))));
}

function byDayChart(days) {
  const width = 900, height = 250, left = 36, bottom = 26, top = 10;
  const plotW = width - left - 8, plotH = height - top - bottom;
  const max = niceMax(Math.max(1, ...days.flatMap((d) => SERIES.map(([k]) => d[k]))));
  const total = days.reduce((n, d) => n + d.started, 0);
  const chart = svg("svg", {class: "rp-chart", viewBox: `0 0 ${width} ${height}`, role: "img",
                            "aria-label": format(gettext("Conversations per day, %(days)s, %(started)s"),
                              {days: format(ngettext("%(count)s day", "%(count)s days", days.length),
                                {count: days.length}), started: STARTED(total)})});
  for (let i = 0; i <= 4; i++) {
    const y = top + plotH - (plotH * i) / 4;
    chart.append(svg("line", {class: "grid", x1: left, x2: width - 8, y1: y, y2: y}),
                 svg("text", {x: left - 6, y: y + 4, "text-anchor": "end"}, (max * i) / 4));
  }
  const group = plotW / Math.max(1, days.length);
  const bar = Math.max(1, (group * 0.8) / SERIES.length);
  const every = Math.ceil(days.length / 12);
  days.forEach((day, i) => {
    const g = svg("g");
    g.append(svg("title", {}, format(gettext("%(date)s: %(counts)s"), {
      date: dayName(day.date, true),
      counts: [STARTED(day.started), ESCALATED(day.escalated), CLOSED(day.closed)].join(", "),
    })));
    SERIES.forEach(([key], j) => {
      const value = day[key];
      const barH = (plotH * value) / max;
      g.append(svg("rect", {class: `s-${key}`, x: left + i * group + group * 0.1 + j * bar, y: top + plotH - barH,
                            width: bar, height: Math.max(0, barH), rx: Math.min(2, bar / 2)}));
    });
    chart.append(g);
    if (i % every === 0) {
      chart.append(svg("text", {x: left + i * group + group / 2, y: height - 8, "text-anchor": "middle"},
                       dayName(day.date)));
    }
  });
  const legend = h("ul", {class: "rp-legend", "aria-hidden": "true"},
                   SERIES.map(([key, label]) => h("li", null, h("span", {class: `s-${key}`}), label)));
  return [chart, legend, dataTable(gettext("The numbers"), [gettext("Date"), ...SERIES.map(([, l]) => l)],
                                   days.map((d) => [dayName(d.date, true), d.started, d.escalated, d.closed]))];
}

function csatChart(csat) {
  const width = 420, row = 30, left = 90, height = row * 5 + 4;
  const max = Math.max(1, ...Object.values(csat.distribution));
  const chart = svg("svg", {class: "rp-chart", viewBox: `0 0 ${width} ${height}`, role: "img",
                            "aria-label": csat.average === null || csat.average === undefined ?
                              format(gettext("Ratings: %(count)s, no average"), {count: csat.count}) :
                              format(gettext("Ratings: %(count)s, average %(average)s out of 5"),
                                {count: csat.count, average: number(csat.average)})});
  [5, 4, 3, 2, 1].forEach((score, i) => {
    const n = csat.distribution[String(score)] || 0;
    const w = ((width - left - 100) * n) / max;
    const y = i * row + 4;
    chart.append(svg("text", {x: 0, y: y + 16}, `${score} · ${FACES[score]}`),
                 svg("rect", {class: "s-score", x: left, y, width: Math.max(n ? 2 : 0, w), height: row - 10, rx: 3}),
                 svg("text", {x: left + w + 6, y: y + 16},
                     csat.count ? `${n} (${Math.round((100 * n) / csat.count)}%)` : "0"));
  });
  return [chart, dataTable(gettext("The numbers"), [gettext("Score"), gettext("Ratings")],
                           [5, 4, 3, 2, 1].map((s) => [`${s} (${FACES[s]})`, csat.distribution[String(s)] || 0]))];
}

function advisorsTable(rows) {
  if (!rows.length) return h("p", null, gettext("No advisors."));
  return h("table", {class: "rp-table"},
           h("thead", null, h("tr", null, [gettext("Advisor"), gettext("Closed"), gettext("First response (median)"),
                                           gettext("Satisfaction")]
             .map((c) => h("th", {scope: "col"}, c)))),
           h("tbody", null, rows.map((r) => h("tr", null, h("td", null, r.name, " ", h("small", null, `@${r.username}`)),
                                             h("td", null, r.closed), h("td", null, duration(r.first_response_s_p50)),
                                             h("td", null, r.csat_average === null ? "—" : outOfFive(r.csat_average))))));
}

function render(report) {
  const c = report.conversations;
  const within = (p90) => format(gettext("median · 90% within %(duration)s"), {duration: duration(p90)});
  clear($("cards")).append(
    card(gettext("Started"), c.started, `${ESCALATED(c.escalated)}, ${CLOSED(c.closed)}`),
    card(gettext("Waiting"), duration(report.waiting_s.p50), within(report.waiting_s.p90)),
    card(gettext("First response"), duration(report.first_response_s.p50), within(report.first_response_s.p90)),
    card(gettext("Resolution"), duration(report.resolution_s.p50), within(report.resolution_s.p90)),
    card(gettext("Satisfaction"), report.csat.average === null ? "—" : outOfFive(report.csat.average),
         format(ngettext("%(count)s rating", "%(count)s ratings", report.csat.count), {count: report.csat.count})),
  );
  clear($("by-day-chart")).append(...byDayChart(report.by_day));
  clear($("csat-chart")).append(...csatChart(report.csat));
  clear($("advisors-table")).append(advisorsTable(report.by_advisor));
}

async function load() {
  const wanted = params();
  const error = $("error");
  error.hidden = true;
  try {
    const report = await request("GET", "/api/inbox/reports", {params: wanted});
    if (report.by_day.length) {
      form.elements.from.value = report.by_day[0].date;
      form.elements.to.value = report.by_day[report.by_day.length - 1].date;
    }
    render(report);
    const query = new URLSearchParams(params());
    history.replaceState(null, "", `?${query}`);
    query.set("format", "csv");
    $("csv").setAttribute("href", `/api/inbox/reports?${query}`);
  } catch (e) {
    error.textContent = e.message || gettext("The report could not be loaded.");
    error.hidden = false;
  }
}

async function fillChoices() {
  const initial = new URLSearchParams(location.search);
  for (const name of ["from", "to"]) if (initial.get(name)) form.elements[name].value = initial.get(name);
  const [me, advisors] = await Promise.all([api.me(), staff ? api.advisors().catch(() => []) : Promise.resolve([])]);
  for (const site of me.sites || []) form.elements.site.append(h("option", {value: site.key}, site.name));
  if (staff) {
    for (const a of advisorList(advisors)) {
      form.elements.advisor.append(h("option", {value: a.username}, a.name || a.username));
    }
  }
  for (const name of ["site", "advisor"]) {
    if (form.elements[name] && initial.get(name)) form.elements[name].value = initial.get(name);
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});
$("timezone-note").textContent = gettext("Days are counted in the account's time zone.");
fillChoices().catch(() => {}).finally(load);

// The inbox's words in the advisor's language. The page loads /jsi18n/?lang=… (Django's JavaScriptCatalog over
// locale/<lang>/LC_MESSAGES/djangojs.po) as a classic script before any module, which defines globalThis.django;
// without it (a test page, a failed load) every string stays English. Mark strings with gettext("…") and
// ngettext("…", "…", n) with literal arguments, so `manage.py makemessages -d djangojs` finds them.

const catalogue = globalThis.django;

/** The page's language ("en", "fr"), from <html lang>: for Intl's dates, times, numbers and plural rules. */
export const LANGUAGE = document.documentElement.lang || "en";

/** The locale for Intl: the browser's own variant of the page's language when it has one (an English page in a
 * British browser writes 24-hour times, "en-GB"; a French one in a Canadian browser, "fr-CA"), else the language. */
export const LOCALE = (navigator.languages || [navigator.language]).find((tag) => {
  try {
    return Intl.getCanonicalLocales(tag)[0].split("-")[0] === LANGUAGE.split("-")[0].toLowerCase();
  } catch {
    return false; // not a language tag Intl takes
  }
}) || LANGUAGE;

export function gettext(text) {
  return catalogue ? catalogue.gettext(text) : text;
}

export function ngettext(singular, plural, count) {
  if (catalogue) return catalogue.ngettext(singular, plural, count);
  return count === 1 ? singular : plural;
}

export function pgettext(context, text) {
  return catalogue ? catalogue.pgettext(context, text) : text;
}

/** Python-style named placeholders, as in the .po files: format(gettext("%(name)s joined"), {name}). */
export function format(template, values) {
  return template.replace(/%\((\w+)\)s/g, (whole, key) => (key in values ? String(values[key]) : whole));
}

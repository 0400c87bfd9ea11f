"""Every string marked for translation is in the compiled French catalogues, with the same placeholders.

The strings are gathered from today's sources by Django's own makemessages (gettext's xgettext, from Debian's
`gettext` package, which .ci/run installs), in a copy of the tree so the repository's .po files are not touched; then
each one is looked up in the compiled .mo (livechat/catalogues.py) the application reads. A template string or a
gettext() call added without its French translation fails here, naming the string.
"""
import gettext as gnu_gettext
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest

from livechat.catalogues import LOCALE_DIR, compile_stale

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = ["fr"]
# (domain, makemessages arguments): the inbox's ES modules are the djangojs domain; the widget carries its own
# dictionary (widget/static/widget/panel.js, checked by widget/tests).
DOMAINS = [("django", []), ("djangojs", ["-d", "djangojs", "--ignore=widget"])]
NOT_SOURCES = {".git", ".venv", "node_modules", "var", "media", "docs", "bench", "__pycache__", ".pytest_cache"}
PLACEHOLDER = re.compile(r"%\(\w+\)[sdr]|\{\{\s*\w+\s*\}\}")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> dict[tuple[str, str], polib.POFile]:
    """The .po files makemessages writes from today's sources, keyed by (language, domain)."""
    assert shutil.which("xgettext") and shutil.which("msgmerge"), (
        "gettext's tools are needed to gather the strings: apt-get install gettext")
    copy = tmp_path_factory.mktemp("sources") / "tree"
    shutil.copytree(ROOT, copy, ignore=lambda folder, names: [n for n in names if n in NOT_SOURCES],
                    symlinks=False)
    found = {}
    for domain, arguments in DOMAINS:
        for language in LANGUAGES:
            subprocess.run([sys.executable, "manage.py", "makemessages", "-l", language, "--no-location",
                            "--no-obsolete", "--ignore=node_modules", *arguments],
                           cwd=copy, check=True, capture_output=True,
                           env={"PATH": "/usr/bin:/bin", "SECRET_KEY": secrets.token_urlsafe(50)})
            written = copy / "locale" / language / "LC_MESSAGES" / f"{domain}.po"
            found[language, domain] = polib.pofile(str(written)) if written.exists() else polib.POFile()
    return found


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("domain", [domain for domain, _ in DOMAINS])
def test_every_marked_string_is_in_the_compiled_catalogue(extracted, language, domain):
    compile_stale()
    mo_path = LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.mo"
    assert mo_path.exists(), f"{mo_path} is missing: its .po has no translations yet"
    with mo_path.open("rb") as handle:
        compiled = gnu_gettext.GNUTranslations(handle)._catalog
    entries = [entry for entry in extracted[language, domain] if not entry.obsolete]
    assert entries, "makemessages found no string at all: the check would prove nothing"
    missing = []
    for entry in entries:
        key = f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid  # pgettext's, as gettext keys it
        if entry.msgid_plural:
            forms = [compiled.get((key, n)) for n in range(2)]
            if not all(forms):
                missing.append(entry.msgid)
        elif not compiled.get(key):
            missing.append(entry.msgid)
    assert not missing, f"{len(missing)} string(s) without a {language} translation in {domain}.po:\n" + \
        "\n".join(f"  {text!r}" for text in missing)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("domain", [domain for domain, _ in DOMAINS])
def test_translations_keep_their_placeholders_and_nothing_is_fuzzy(language, domain):
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"
    assert path.exists(), f"{path} is missing"
    catalogue = polib.pofile(str(path))
    assert not catalogue.metadata_is_fuzzy
    wrong = []
    for entry in catalogue:
        if entry.obsolete:
            continue
        if "fuzzy" in entry.flags:
            wrong.append(f"fuzzy: {entry.msgid!r}")
        pairs = ([(entry.msgid, entry.msgstr)] if not entry.msgid_plural else
                 [(entry.msgid_plural, text) for text in entry.msgstr_plural.values()])
        for source, translated in pairs:
            if translated and sorted(set(PLACEHOLDER.findall(source))) != sorted(set(PLACEHOLDER.findall(translated))):
                wrong.append(f"placeholders differ: {source!r} -> {translated!r}")
    assert not wrong, "\n".join(wrong)


def test_the_check_catches_a_string_left_untranslated(tmp_path):
    """The lookup above on a catalogue that lacks one string: it must be reported (the check can fail)."""
    catalogue = polib.POFile()
    catalogue.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Plural-Forms": "nplurals=2; plural=(n > 1);"}
    catalogue.append(polib.POEntry(msgid="Inbox", msgstr="Boîte de réception"))
    catalogue.append(polib.POEntry(msgid="Close", msgstr=""))
    catalogue.save_as_mofile(str(tmp_path / "x.mo"))
    with (tmp_path / "x.mo").open("rb") as handle:
        compiled = gnu_gettext.GNUTranslations(handle)._catalog
    assert compiled.get("Inbox") == "Boîte de réception"
    assert not compiled.get("Close")

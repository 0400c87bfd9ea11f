"""The widget's words in English and French (issue 19): panel.js's WORDS dictionary, read from the file itself."""
import json
import re

import pytest

from widget import views

PANEL = views.PANEL_FILE.read_text(encoding="utf-8")
LOADER = views.LOADER_FILE.read_text(encoding="utf-8")
WORDS_RE = re.compile(r"var WORDS = (\{.*?\n  \}\});", re.S)
# French that is spelled as in English; anything else equal in both is an id left untranslated.
SAME_IN_FRENCH = {"messages"}


def words() -> dict[str, dict[str, str]]:
    found = WORDS_RE.search(PANEL)
    assert found, "panel.js has no `var WORDS = {...};` block"
    return json.loads(found.group(1))


def placeholders(text: str) -> list[str]:
    return sorted(re.findall(r"\{(\w+)\}", text))


def code_outside_words() -> str:
    return WORDS_RE.sub("", PANEL)


def test_the_widget_speaks_english_and_french_only():
    assert set(words()) == {"en", "fr"}


def test_french_has_exactly_the_english_ids():
    en, fr = words()["en"], words()["fr"]

    assert set(fr) - set(en) == set(), "ids only in French"
    assert set(en) - set(fr) == set(), "ids with no French"


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_no_text_is_empty(lang):
    empty = [key for key, text in words()[lang].items() if not isinstance(text, str) or not text.strip()]

    assert empty == []


def test_each_french_text_keeps_the_english_placeholders():
    en, fr = words()["en"], words()["fr"]

    differ = {key: (en[key], fr[key]) for key in en if placeholders(en[key]) != placeholders(fr.get(key, ""))}
    assert differ == {}


def test_the_five_rating_words_are_five_in_both_languages():
    for lang, table in words().items():
        assert len(table["rates"].split("|")) == 5, lang
        assert all(word.strip() for word in table["rates"].split("|")), lang


def test_french_is_not_english_left_in_place():
    en, fr = words()["en"], words()["fr"]

    assert {key for key in en if en[key] == fr[key]} == SAME_IN_FRENCH


def test_every_id_the_panel_asks_for_exists_and_every_id_is_asked_for():
    code = code_outside_words()
    en = words()["en"]
    # t("id") and the ids picked by a condition inside t(…): t(x ? "a" : "b")
    asked = set(re.findall(r'\bt\("(\w+)"', code))
    asked |= {key for call in re.findall(r"\bt\(([^;]*?\?[^;]*?)\)", code)
              for key in re.findall(r'[?:] "(\w+)"', call)}
    # setStatus(s) shows t(s): the statuses are ids too
    asked |= set(re.findall(r'setStatus\("(\w+)"\)', code))

    assert asked - set(en) == set(), "ids used but not defined"
    unused = {key for key in en if f'"{key}"' not in code}
    assert unused == set(), "ids defined but never used"


def test_the_loader_labels_its_launcher_with_the_panels_words():
    table = words()

    assert f'"{table["fr"]["open"]}"' in LOADER
    assert f'"{table["en"]["open"]}"' in LOADER


def test_api_calls_carry_the_widgets_language():
    assert re.search(r'headers = \{ "Accept-Language": lang \}', PANEL)

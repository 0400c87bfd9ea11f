"""Accent- and case-insensitive text for search, the same rule on both databases:

- PostgreSQL: `livechat_fold(text)` = lower(unaccent(text)), and `livechat_visitor_text(jsonb)` = the folded values
  of a visitor's variables; IMMUTABLE SQL functions (migration productivity 0002) so indexes can use them.
- SQLite: the same functions in Python, registered on every new connection, plus `livechat_words(text, query)`
  (whether every query word starts a word of the text), the plain fallback of PostgreSQL's full-text match.
"""
import json
import re
import unicodedata

_WORD = re.compile(r"[^\W_]+")


def fold(text: str | None) -> str:
    """Lower case without accents: "Élodie" -> "elodie"."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def words(text: str | None) -> list[str]:
    """The folded words of a query, in order, without repeats."""
    return list(dict.fromkeys(_WORD.findall(fold(text))))


def visitor_text(variables) -> str:
    if isinstance(variables, str):
        try:
            variables = json.loads(variables)
        except ValueError:
            return ""
    if not isinstance(variables, dict):
        return ""
    return fold(" ".join(str(value) for value in variables.values() if value is not None))


def words_match(text: str | None, query: str | None) -> bool:
    """Every word of `query` (space-separated folded words) starts some word of `text`."""
    have = _WORD.findall(fold(text))
    return all(any(word.startswith(want) for word in have) for want in (query or "").split())


def register_sqlite_functions(sender, connection, **kwargs) -> None:
    if connection.vendor != "sqlite":
        return
    raw = connection.connection
    raw.create_function("livechat_fold", 1, fold, deterministic=True)
    raw.create_function("livechat_visitor_text", 1, visitor_text, deterministic=True)
    raw.create_function("livechat_words", 2, lambda t, q: int(words_match(t, q)), deterministic=True)

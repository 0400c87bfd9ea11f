"""Search indexes (issue 16), PostgreSQL only; SQLite registers the same functions in Python (productivity.folding)
and scans.

- `livechat_fold(text)`: lower(unaccent(text)), IMMUTABLE so that indexes may use it (unaccent itself is only
  STABLE: its dictionary could change; ours is the extension's own and does not).
- Item texts: `conversations_message.search_vector`, a stored generated column (to_tsvector('simple',
  livechat_fold(text))) that the database keeps on every insert and update of an item, with a GIN index. The model
  does not declare it (Django never reads or writes it); adding it rewrites the table once.
- Visitor names and variables: `conversations_visitor.search_text`, a stored generated column (the folded values
  of the variables: a pseudonym is made of them), with a trigram GIN index for `LIKE '%word%'`.
"""
from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    """CREATE OR REPLACE FUNCTION livechat_fold(value text) RETURNS text
       LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
       AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, value)) $$""",
    """CREATE OR REPLACE FUNCTION livechat_visitor_text(variables jsonb) RETURNS text
       LANGUAGE sql IMMUTABLE PARALLEL SAFE
       AS $$ SELECT CASE WHEN jsonb_typeof(variables) = 'object' THEN
                    coalesce((SELECT livechat_fold(string_agg(value, ' ')) FROM jsonb_each_text(variables)), '')
                  ELSE '' END $$""",
    # Kept by the database on every insert and update of an item; a search's recheck of an item reads it rather
    # than folding and parsing the text again (unaccent costs ~15 us an item).
    """ALTER TABLE conversations_message ADD COLUMN IF NOT EXISTS search_vector tsvector
       GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, livechat_fold(text))) STORED""",
    "CREATE INDEX IF NOT EXISTS message_text_search ON conversations_message USING gin (search_vector)",
    """ALTER TABLE conversations_visitor ADD COLUMN IF NOT EXISTS search_text text
       GENERATED ALWAYS AS (livechat_visitor_text(variables)) STORED""",
    "CREATE INDEX IF NOT EXISTS visitor_text_trigram ON conversations_visitor USING gin (search_text gin_trgm_ops)",
]
REVERSE = [
    "DROP INDEX IF EXISTS visitor_text_trigram",
    "ALTER TABLE conversations_visitor DROP COLUMN IF EXISTS search_text",
    "DROP INDEX IF EXISTS message_text_search",
    "ALTER TABLE conversations_message DROP COLUMN IF EXISTS search_vector",
    "DROP FUNCTION IF EXISTS livechat_visitor_text(jsonb)",
    "DROP FUNCTION IF EXISTS livechat_fold(text)",
]


def create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in FORWARD:
        schema_editor.execute(statement)


def drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in REVERSE:
        schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ("productivity", "0001_initial"),
        ("conversations", "0006_conversation_labels"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]

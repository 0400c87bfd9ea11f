"""Search indexes (issue 16), PostgreSQL only; SQLite registers the same functions in Python (productivity.folding)
and scans.

- `livechat_fold(text)`: lower(unaccent(text)), IMMUTABLE so that indexes may use it (unaccent itself is only
  STABLE: its dictionary could change; ours is the extension's own and does not).
- Item texts: a GIN index on to_tsvector('simple', livechat_fold(text)), an expression index the database keeps
  on every insert and update of an item.
- Visitor names and variables: a trigram GIN index on livechat_visitor_text(variables) (the folded variable values;
  a pseudonym is made of them) for `LIKE '%word%'`.
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
    """CREATE INDEX IF NOT EXISTS message_text_search ON conversations_message
       USING gin (to_tsvector('simple'::regconfig, livechat_fold(text)))""",
    """CREATE INDEX IF NOT EXISTS visitor_text_trigram ON conversations_visitor
       USING gin (livechat_visitor_text(variables) gin_trgm_ops)""",
]
REVERSE = [
    "DROP INDEX IF EXISTS visitor_text_trigram",
    "DROP INDEX IF EXISTS message_text_search",
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

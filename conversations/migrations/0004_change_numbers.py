"""Change numbers for the inbox's resume: the columns, and their source (conversations.changes): a PostgreSQL
sequence, or on SQLite a one-row counter. Existing rows keep 0: they changed before any client could ask.

The columns are added with plain ALTER TABLE rather than Django's AddField: on SQLite, AddField rebuilds the table
(copy, drop, rename), which drops the triggers of migration 0002 that keep the inbox counts."""
from django.db import migrations, models

from conversations.changes import SEQUENCE, SQLITE_COUNTER

COLUMNS = [
    "ALTER TABLE conversations_conversation ADD COLUMN change bigint NOT NULL DEFAULT 0",
    "ALTER TABLE conversations_readstate ADD COLUMN change bigint NOT NULL DEFAULT 0",
    "CREATE INDEX conv_change ON conversations_conversation (change)",
    "CREATE INDEX read_state_change ON conversations_readstate (advisor_id, change)",
]
COLUMNS_BACK = [
    "DROP INDEX read_state_change",
    "DROP INDEX conv_change",
    "ALTER TABLE conversations_readstate DROP COLUMN change",
    "ALTER TABLE conversations_conversation DROP COLUMN change",
]


def create(apps, schema_editor):
    for statement in COLUMNS:
        schema_editor.execute(statement)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}")
    else:
        schema_editor.execute(f"CREATE TABLE IF NOT EXISTS {SQLITE_COUNTER} (value INTEGER NOT NULL)")
        schema_editor.execute(f"INSERT INTO {SQLITE_COUNTER} (value) SELECT 0 WHERE NOT EXISTS "
                              f"(SELECT 1 FROM {SQLITE_COUNTER})")
        # A conversation row that took counter + 1 in its own UPDATE (next_change_sql) moves the counter there.
        schema_editor.execute(f"""
            CREATE TRIGGER conversations_change_taken AFTER UPDATE OF change ON conversations_conversation
            WHEN NEW.change > OLD.change
            BEGIN UPDATE {SQLITE_COUNTER} SET value = NEW.change WHERE value < NEW.change; END""")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP SEQUENCE IF EXISTS {SEQUENCE}")
    else:
        schema_editor.execute("DROP TRIGGER IF EXISTS conversations_change_taken")
        schema_editor.execute(f"DROP TABLE IF EXISTS {SQLITE_COUNTER}")
    for statement in COLUMNS_BACK:
        schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('advisors', '0002_notification'),
        ('conversations', '0003_client_id_per_sender'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name='conversation',
                    name='change',
                    field=models.BigIntegerField(default=0),
                ),
                migrations.AddField(
                    model_name='readstate',
                    name='change',
                    field=models.BigIntegerField(default=0),
                ),
                migrations.AddIndex(
                    model_name='conversation',
                    index=models.Index(fields=['change'], name='conv_change'),
                ),
                migrations.AddIndex(
                    model_name='readstate',
                    index=models.Index(fields=['advisor', 'change'], name='read_state_change'),
                ),
            ],
            database_operations=[migrations.RunPython(create, drop)],
        ),
    ]

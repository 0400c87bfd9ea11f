"""The stored figures of the current escalation and the satisfaction state (conversations.figures,
reports.services), and the index of the reports' "started" count.

Added with plain ALTER TABLE rather than Django's AddField, like migration 0004: on SQLite, AddField of a column
with a default rebuilds the table (copy, drop, rename), which drops the triggers of migration 0002. On PostgreSQL
an added column with a constant default rewrites nothing."""
from django.db import migrations, models

TYPES = {
    "postgresql": {"datetime": "timestamp with time zone", "json": "jsonb", "bool": "boolean NOT NULL DEFAULT false"},
    "sqlite": {"datetime": "datetime", "json": "text", "bool": "bool NOT NULL DEFAULT 0"},
}
COLUMNS = [("escalated_at", "datetime"), ("assigned_at", "datetime"), ("first_reply_at", "datetime"),
           ("rating_asked", "bool"), ("rating", "json")]


def create(apps, schema_editor):
    types = TYPES[schema_editor.connection.vendor]
    for name, kind in COLUMNS:
        schema_editor.execute(f"ALTER TABLE conversations_conversation ADD COLUMN {name} {types[kind]} NULL"
                              if kind != "bool" else
                              f"ALTER TABLE conversations_conversation ADD COLUMN {name} {types[kind]}")
    schema_editor.execute("CREATE INDEX conv_site_created ON conversations_conversation (site_id, created_at)")


def drop(apps, schema_editor):
    schema_editor.execute("DROP INDEX conv_site_created")
    for name, _ in reversed(COLUMNS):
        schema_editor.execute(f"ALTER TABLE conversations_conversation DROP COLUMN {name}")


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0005_message_image_size'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(model_name='conversation', name='assigned_at',
                                    field=models.DateTimeField(blank=True, null=True)),
                migrations.AddField(model_name='conversation', name='escalated_at',
                                    field=models.DateTimeField(blank=True, null=True)),
                migrations.AddField(model_name='conversation', name='first_reply_at',
                                    field=models.DateTimeField(blank=True, null=True)),
                migrations.AddField(model_name='conversation', name='rating',
                                    field=models.JSONField(blank=True, null=True)),
                migrations.AddField(model_name='conversation', name='rating_asked',
                                    field=models.BooleanField(default=False)),
                migrations.AddIndex(model_name='conversation',
                                    index=models.Index(fields=['site', 'created_at'], name='conv_site_created')),
            ],
            database_operations=[migrations.RunPython(create, drop)],
        ),
    ]

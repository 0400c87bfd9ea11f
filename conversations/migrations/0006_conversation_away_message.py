"""Routing (CONTRACT section 7): when the bot last sent the site's away message, and whether the visitor's next
e-mail address answers it.

The columns are added with plain ALTER TABLE rather than Django's AddField: on SQLite, AddField rebuilds the table
(copy, drop, rename), which drops the triggers of migration 0002 that keep the inbox counts (as in 0004)."""
from django.db import migrations, models

FORWARD = [
    "ALTER TABLE conversations_conversation ADD COLUMN away_sent_at timestamp with time zone NULL",
    "ALTER TABLE conversations_conversation ADD COLUMN awaiting_email boolean NOT NULL DEFAULT false",
]
BACKWARD = [
    "ALTER TABLE conversations_conversation DROP COLUMN awaiting_email",
    "ALTER TABLE conversations_conversation DROP COLUMN away_sent_at",
]


def forward(apps, schema_editor):
    for statement in FORWARD:
        if schema_editor.connection.vendor != "postgresql":
            statement = statement.replace("timestamp with time zone", "datetime").replace("DEFAULT false",
                                                                                          "DEFAULT 0")
        schema_editor.execute(statement)


def backward(apps, schema_editor):
    for statement in BACKWARD:
        schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0005_message_image_size'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name='conversation',
                    name='awaiting_email',
                    field=models.BooleanField(db_default=False, default=False),
                ),
                migrations.AddField(
                    model_name='conversation',
                    name='away_sent_at',
                    field=models.DateTimeField(blank=True, null=True),
                ),
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        ),
    ]

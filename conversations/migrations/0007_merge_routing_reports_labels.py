# The three branches of 2026-12-01 that each added a 0006 (routing, reports, labels): none depends on another.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0006_conversation_away_message'),
        ('conversations', '0006_report_figures'),
        ('conversations', '0006_conversation_labels'),
    ]

    operations = [
    ]

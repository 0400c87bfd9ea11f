"""One episode for each conversation that reached a human before the figures were kept, from its items: escalated
at its `waiting_since` (or the visitor's last item before its first advisor or system item, or that item, or its
creation), assigned at its first system event
(an assignment says "… joined the conversation"), first answered at its first advisor reply, closed at
`closed_at`. An estimate for the history (a conversation escalated several times counts once); every escalation
from now on is exact."""
from django.db import migrations
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import Coalesce


def _seconds(later, earlier):
    # an item written before the escalation's estimate counts as at once, never as negative
    return None if later is None or earlier is None else max(0.0, (later - earlier).total_seconds())


def backfill(apps, schema_editor):
    Conversation = apps.get_model("conversations", "Conversation")
    Message = apps.get_model("conversations", "Message")
    Episode = apps.get_model("reports", "Episode")
    items = Message.objects.filter(conversation=OuterRef("pk")).order_by("seq")
    reply = items.filter(sender="advisor").exclude(kind="note")
    human = items.filter(Q(sender="advisor") | Q(sender="system"))
    rows = (Conversation.objects.filter(status__in=["live", "closed"], episodes__isnull=True)
            .annotate(reply_at=Subquery(reply.values("created_at")[:1]),
                      reply_by=Subquery(reply.values("advisor_id")[:1]),
                      joined_at=Subquery(items.filter(sender="system", text__endswith="joined the conversation")
                                         .values("created_at")[:1]),
                      human_at=Subquery(human.values("created_at")[:1]))
            .annotate(called_at=Subquery(Message.objects.filter(conversation=OuterRef("pk"), sender="visitor",
                                                                created_at__lte=OuterRef("human_at"))
                                         .order_by("-seq").values("created_at")[:1]))
            .annotate(escalated=Coalesce("waiting_since", "called_at", "human_at", "created_at"))
            .values_list("pk", "site_id", "status", "assigned_id", "escalated", "joined_at", "reply_at", "reply_by",
                         "closed_at"))
    batch, live = [], []
    for pk, site_id, status, assigned_id, escalated, joined_at, reply_at, reply_by, closed_at in rows.iterator():
        assigned_at = joined_at or (reply_at if assigned_id else None)
        closed_at = closed_at if status == "closed" else None
        batch.append(Episode(conversation_id=pk, site_id=site_id, escalated_at=escalated, assigned_at=assigned_at,
                             first_reply_at=reply_at, first_reply_by_id=reply_by, advisor_id=assigned_id,
                             closed_at=closed_at, waiting_s=_seconds(assigned_at, escalated),
                             first_response_s=_seconds(reply_at, escalated),
                             resolution_s=_seconds(closed_at, escalated)))
        live.append(Conversation(pk=pk, escalated_at=escalated, assigned_at=assigned_at, first_reply_at=reply_at))
        if len(batch) >= 2000:
            Episode.objects.bulk_create(batch)
            Conversation.objects.bulk_update(live, ["escalated_at", "assigned_at", "first_reply_at"])
            batch, live = [], []
    Episode.objects.bulk_create(batch)
    Conversation.objects.bulk_update(live, ["escalated_at", "assigned_at", "first_reply_at"])


class Migration(migrations.Migration):
    dependencies = [("reports", "0001_initial")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]

"""The history reports aggregate: one row per escalation, one per rating. Written by the services as the
conversation goes (conversations.figures, reports.services), never recomputed by scanning items."""
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Episode(models.Model):
    """One escalation of a conversation: from the visitor's call for a human to the close that ends it.

    Which moments count (conversations.figures is the one place that writes them):
    - `escalated_at`: the bot escalated, the visitor of a live-chat-only site wrote (first words, or again after a
      close), or an advisor took, was assigned or answered a conversation the bot had. Each one opens an episode.
    - `assigned_at`: the first take or assignment after it (an escalation straight to someone: the same moment).
    - `first_reply_at` / `first_reply_by`: the first advisor reply (never a note) after it.
    - `closed_at`: the close that ends it. An advisor's reopening undoes that close and the episode goes on: a
      conversation closed, reopened and closed again counts once, on its last close, resolution measured to it.
      A visitor who writes again after a close starts a new episode instead (they called again).
    - `advisor`: who handled it, the last advisor assigned during it (none if nobody ever was).
    Back to the bot ends an episode without a close: it is never counted as closed."""

    conversation = models.ForeignKey("conversations.Conversation", on_delete=models.CASCADE, related_name="episodes")
    site = models.ForeignKey("advisors.Site", on_delete=models.CASCADE, related_name="+")
    escalated_at = models.DateTimeField()
    assigned_at = models.DateTimeField(null=True, blank=True)
    first_reply_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    advisor = models.ForeignKey("advisors.Advisor", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    first_reply_by = models.ForeignKey("advisors.Advisor", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")
    # The durations reports take percentiles of, in seconds from the escalation, stored with the moments: a
    # percentile then sorts a plain column that the indexes below carry (index-only scans).
    waiting_s = models.FloatField(null=True, blank=True)
    first_response_s = models.FloatField(null=True, blank=True)
    resolution_s = models.FloatField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["conversation", "-id"], name="episode_latest"),
            # Reports: a range of one site's (or the advisor's sites') escalations, or closings, with what the
            # report reads of them (INCLUDE is PostgreSQL's; elsewhere a plain index).
            models.Index(fields=["site", "escalated_at"], name="episode_site_escalated",
                         include=["waiting_s", "first_response_s", "first_reply_by"]),
            models.Index(fields=["site", "closed_at"], condition=Q(closed_at__isnull=False),
                         name="episode_site_closed", include=["resolution_s", "advisor"]),
            # An advisor's own figures.
            models.Index(fields=["advisor", "escalated_at"], name="episode_advisor_escalated",
                         include=["site", "waiting_s"]),
            models.Index(fields=["advisor", "closed_at"], condition=Q(closed_at__isnull=False),
                         name="episode_advisor_closed", include=["site", "resolution_s"]),
            models.Index(fields=["first_reply_by", "escalated_at"], condition=Q(first_reply_by__isnull=False),
                         name="episode_replier_escalated", include=["site", "first_response_s"]),
        ]

    def __str__(self) -> str:
        return f"episode {self.pk} of conversation {self.conversation_id}"


class Rating(models.Model):
    """A visitor's answer to "How was this conversation?", once per advisor's closing (reports.services)."""

    conversation = models.ForeignKey("conversations.Conversation", verbose_name=_("conversation"),
                                     on_delete=models.CASCADE, related_name="ratings")
    episode = models.ForeignKey(Episode, verbose_name=_("episode"), null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="ratings")
    site = models.ForeignKey("advisors.Site", verbose_name=_("site"), on_delete=models.CASCADE, related_name="+")
    advisor = models.ForeignKey("advisors.Advisor", verbose_name=_("advisor"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+",
                                help_text=_("Who handled the conversation it rates."))
    score = models.PositiveSmallIntegerField(_("score"))
    comment = models.TextField(_("comment"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("rating")
        verbose_name_plural = _("ratings")
        constraints = [models.CheckConstraint(condition=Q(score__gte=1, score__lte=5), name="rating_score_1_5")]
        indexes = [
            models.Index(fields=["site", "created_at"], name="rating_site_created"),
            models.Index(fields=["advisor", "created_at"], name="rating_advisor_created"),
        ]

    def __str__(self) -> str:
        return f"{self.score}/5 for conversation {self.conversation_id}"

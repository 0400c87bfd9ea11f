"""Satisfaction: a visitor rates a conversation an advisor closed, once per closing (CONTRACT section 7)."""
from django.db import transaction
from django.utils.translation import gettext as _

from conversations import services as conversation_services
from conversations.errors import Conflict, RateLimited, Refused, refuse_nul
from conversations.models import Conversation, Visitor
from reports import events
from reports.models import Episode, Rating

COMMENT_MAX_CHARS = 1000


def rating_clean(*, score, comment) -> tuple[int, str]:
    """A score is a whole number from 1 to 5 (not a boolean, not "4"); a comment at most 1,000 characters."""
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise Refused(_("score is a whole number from 1 to 5."), fields={"score": [_("A whole number from 1 to 5.")]})
    if comment is None:
        comment = ""
    if not isinstance(comment, str) or len(comment) > COMMENT_MAX_CHARS:
        raise Refused(_("comment is a text of at most %(max)s characters.") % {"max": COMMENT_MAX_CHARS},
                      fields={"comment": [_("At most %(max)s characters.") % {"max": COMMENT_MAX_CHARS}]})
    return score, refuse_nul(comment, "comment").strip()


def rating_create(*, visitor: Visitor, score, comment=None) -> Rating:
    """The visitor's rating of the closing that asked for it: stored with the episode it rates and its advisor,
    an event item "Rated N/5" (with the comment) in the thread, and `rating` on CONV. Conflict if no rating is
    asked (the conversation is not closed by an advisor, was rated already, or its site does not ask); counts
    against the token's send limit (RateLimited). The one place a rating is written: reports.events.rating_created
    announces it (the rating.created webhook, the frames)."""
    score, comment = rating_clean(score=score, comment=comment)
    wait = conversation_services.visitor_send_wait(visitor_id=visitor.pk)
    if wait is not None:
        raise RateLimited(_("Too many requests; try again shortly."), retry_after=wait)
    with transaction.atomic():
        conversation = conversation_services._lock(visitor=visitor)
        if conversation.status != Conversation.Status.CLOSED or not conversation.rating_asked:
            raise Conflict(_("This conversation has no rating to give: it was rated already, or is not closed."))
        episode = Episode.objects.filter(conversation=conversation).order_by("-id").only("pk", "advisor_id").first()
        rating = Rating.objects.create(conversation=conversation, episode=episode, site_id=conversation.site_id,
                                       advisor_id=episode.advisor_id if episode else None, score=score,
                                       comment=comment)
        timeline = conversation_services._Timeline(conversation)
        timeline.set(rating_asked=False, rating={"score": score, "comment": comment})
        timeline.event(lambda: (_("Rated %(score)s/5: %(comment)s") if comment else _("Rated %(score)s/5"))
                       % {"score": score, "comment": comment})
        timeline.save()
        events.rating_created(rating, conversation_services._load_related(conversation))
    return rating

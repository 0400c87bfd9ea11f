"""What a rating announces: inside the transaction that stores it (webhook deliveries are rows written with it)
and on commit (the frames)."""
from conversations import events as conversation_events
from conversations.models import Conversation
from integrations import webhooks
from reports.models import Rating


def rating_created(rating: Rating, conversation: Conversation) -> None:
    """rating.created for the site's webhooks; the conversation's new `rating` (CONV) for the inbox, and the
    widget's view (no rating asked any more, for the visitor's other tabs). The event item itself went out as any
    item does."""
    webhooks.rating_created(conversation, score=rating.score, comment=rating.comment)
    conversation_events.conversation_changed(conversation)

"""What a rating announces, on commit."""
from conversations import events as conversation_events
from conversations.models import Conversation
from reports.models import Rating


def rating_created(rating: Rating, conversation: Conversation) -> None:
    """The conversation's new `rating` (CONV) for the inbox, and the widget's view (no rating asked any more, for
    the visitor's other tabs). The event item itself went out as any item does."""
    conversation_events.conversation_changed(conversation)

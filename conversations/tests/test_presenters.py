"""Presenting an item or an advisor makes no reference cycle: what a frame was built from is freed at once, not at
the collector's next pass (a replay of long items once grew the web process by tens of MB)."""
import gc
import weakref

from conversations.models import Message
from conversations.presenters import avatar_url, message_dict, stored_name
from conversations.selectors import messages_for_visitor
from conversations.tests.conftest import escalated


def freed_without_the_collector(make) -> bool:
    """Whether what `make` returns is gone once its last reference goes, with the cyclic collector off."""
    gc.collect()
    gc.disable()
    try:
        instance = make()
        gone = weakref.ref(instance)
        del instance
        return gone() is None
    finally:
        gc.enable()


def test_an_item_presented_to_the_visitor_is_freed_at_once(demo):
    conversation = escalated()

    def presented():
        item = messages_for_visitor(conversation_id=conversation.pk, after=0, limit=1)[0]
        assert message_dict(item)["seq"] == 1
        return item

    assert freed_without_the_collector(presented)


def test_an_image_items_stored_name_is_read_as_the_field_gives_it(demo):
    conversation = escalated()
    item = Message(conversation=conversation, seq=99, kind="image", sender="visitor", image="images/a/b.png")
    assert stored_name(item, "image") == item.image.name == "images/a/b.png"  # now a FieldFile: same name
    assert stored_name(item, "image") == "images/a/b.png"
    assert stored_name(Message(conversation=conversation, seq=98, kind="text", sender="visitor"), "image") == ""
    deferred = Message.objects.filter(conversation=conversation).defer("image").first()
    assert stored_name(deferred, "image") == ""


def test_an_advisor_whose_avatar_is_presented_is_freed_at_once(demo):
    from advisors.models import Advisor

    def presented():
        advisor = Advisor.objects.get(pk=demo.advisors["alice"].pk)
        advisor.avatar = "avatars/alice.png"
        assert avatar_url(advisor).endswith("/media/avatars/alice.png")
        return advisor

    assert freed_without_the_collector(presented)

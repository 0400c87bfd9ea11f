"""Collision detection: while an advisor types, the others see `replying` (a note's only licensed advisors)."""
import pytest
from asgiref.sync import sync_to_async

from conversations.tests.conftest import inbox_socket, start_session, walk_to_human, widget_socket

pytestmark = pytest.mark.django_db(transaction=True)


def replying(frame):
    return frame["type"] == "replying"


async def test_others_see_who_is_replying_and_the_replier_does_not(demo, tokens):
    session = await sync_to_async(start_session)()
    visitor = await widget_socket(session["token"])
    await walk_to_human(visitor)
    cid = session["conversation"]["id"]
    alice, alice_other_tab, bob, carol = [await inbox_socket(tokens[n]) for n in ("alice", "alice", "bob", "carol")]
    await alice.send({"type": "typing", "conversation": cid, "note": False})
    expected = {"type": "replying", "conversation": cid, "advisor": {"username": "alice", "name": "Alice"}}
    assert await bob.wait_for(replying) == expected
    assert await carol.wait_for(replying) == expected  # a reply: every advisor of the site, licensed or not
    assert (await visitor.wait_for(lambda f: f["type"] == "typing"))["name"] == "Alice"
    assert not [f for f in await alice_other_tab.drain(0.3) if replying(f)]
    # at most every 2 s: a second frame at once is not forwarded
    await alice.send({"type": "typing", "conversation": cid, "note": False})
    assert not [f for f in await bob.drain(0.4) if replying(f)]
    for socket in (alice, alice_other_tab, bob, carol, visitor):
        await socket.disconnect()


async def test_a_note_being_written_reaches_licensed_advisors_only_and_never_the_visitor(demo, tokens):
    session = await sync_to_async(start_session)()
    visitor = await widget_socket(session["token"])
    await walk_to_human(visitor)
    cid = session["conversation"]["id"]
    alice, bob, carol = [await inbox_socket(tokens[n]) for n in ("alice", "bob", "carol")]
    await alice.send({"type": "typing", "conversation": cid, "note": True})
    assert (await bob.wait_for(replying))["advisor"]["username"] == "alice"
    assert not [f for f in await carol.drain(0.4) if replying(f)]
    assert not [f for f in await visitor.drain(0.2) if f["type"] == "typing"]
    for socket in (alice, bob, carol, visitor):
        await socket.disconnect()


async def test_replying_on_a_conversation_outside_scope_is_refused_and_reveals_nothing(demo, tokens):
    session = await sync_to_async(start_session)("demo-blog")
    visitor = await widget_socket(session["token"], site_key="demo-blog")
    await walk_to_human(visitor)
    cid = session["conversation"]["id"]
    bob, alice = await inbox_socket(tokens["bob"]), await inbox_socket(tokens["alice"])  # bob: shop only
    await bob.send({"type": "typing", "conversation": cid, "note": False})
    assert (await bob.wait_for(lambda f: f["type"] == "error"))["code"] == "not_found"
    assert not [f for f in await alice.drain(0.4) if replying(f)]
    for socket in (alice, bob, visitor):
        await socket.disconnect()

"""The inbox list at a fixed query budget, and its counts (kept by database triggers) against a naive count
recomputed in the test after every change a conversation can go through."""
import importlib
import itertools
import os
from datetime import datetime, timezone

import pytest
from django.db import connection
from rest_framework.test import APIClient

from advisors.models import Advisor, Site
from conversations import selectors, services
from conversations.errors import Refused
from conversations.models import Conversation, ConversationTally, Message, ReadState, Visitor
from conversations.presenters import conversation_dict
from conversations.tests.conftest import ORIGIN, new_id
from conversations.tests.conftest import escalated as walk_to_human

CONVERSATIONS = "/api/inbox/conversations"

pytestmark = pytest.mark.django_db

BOXES = ("live", "closed", "chatbot")
FILTERS = ("all", "unassigned", "unread", "mine")
LIST_QUERY_BUDGET = 4  # authentication (token, user, advisor, sites), the page, the advisors it names, the counts

_addresses = itertools.count(1)


def start_session(site_key: str = "demo-shop") -> dict:
    """A new visitor, each from its own address: these tests start more sessions than one address may in a
    minute, and the limit's count outlives a test."""
    n = next(_addresses)
    response = APIClient().post("/api/widget/sessions", {"site": site_key}, format="json", HTTP_ORIGIN=ORIGIN,
                                REMOTE_ADDR=f"10.{os.getpid() % 250}.{n // 250 % 250}.{n % 250 + 1}")
    assert response.status_code == 201, response.content
    return response.json()


def escalated(site_key: str = "demo-shop", first_name: str = "Jean") -> Conversation:
    return walk_to_human(site_key, first_name, start=start_session)


def naive_counts(advisor: Advisor, site_key: str | None = None) -> dict[str, int]:
    """The contract's counts, the slow obvious way: every conversation in scope looked at in Python."""
    site_ids = set(advisor.sites.values_list("id", flat=True))
    if site_key:
        site_ids &= set(Site.objects.filter(key=site_key).values_list("id", flat=True))
    reads = dict(ReadState.objects.filter(advisor=advisor).values_list("conversation_id", "seq"))
    counts = dict.fromkeys(("live", "closed", "chatbot", "unassigned", "unread", "mine", "to_process"), 0)
    for conversation in Conversation.objects.filter(site_id__in=site_ids):
        last = conversation.last_seq if advisor.licensed else conversation.last_public_seq
        unread = last > reads.get(conversation.pk, 0)
        if conversation.status == "bot":
            counts["chatbot"] += 1 if advisor.sees_chatbot else 0
            continue
        counts[conversation.status] += 1
        if conversation.status != "live":
            continue
        unassigned = conversation.assigned_id is None
        mine = conversation.assigned_id == advisor.pk
        counts["unassigned"] += unassigned
        counts["unread"] += unread
        counts["mine"] += mine
        counts["to_process"] += unassigned or (mine and unread)
    return counts


def assert_counts_exact(demo, api_as) -> None:
    """Every demo advisor (licensed or not, one site or two), over all their sites and per site, through the
    API; and the tallies equal what a rebuild from scratch computes."""
    for username, advisor in demo.advisors.items():
        advisor = Advisor.objects.get(pk=advisor.pk)
        client = api_as(username)
        assert client.get(CONVERSATIONS).json()["counts"] == naive_counts(advisor), username
        for site in advisor.sites.all():
            listed = client.get(CONVERSATIONS, {"site": site.key}).json()
            assert listed["counts"] == naive_counts(advisor, site.key), (username, site.key)
    assert_tallies_match_a_rebuild()


def assert_tallies_match_a_rebuild() -> None:
    def snapshot():
        tallies = {(t.site_id, t.bucket, t.slot): t.count for t in ConversationTally.objects.exclude(count=0)}
        copies = set(ReadState.objects.values_list("pk", "site_id", "live_caught_up", "live_caught_up_public"))
        return tallies, copies

    kept = snapshot()
    importlib.import_module("conversations.migrations.0002_inbox_counts").rebuild(connection)
    assert snapshot() == kept


def test_counts_follow_every_change_of_a_conversation(demo, api_as):
    alice, bob, carol = (demo.advisors[name] for name in ("alice", "bob", "carol"))
    # given conversations on both demo sites, one of them long closed
    session = start_session("demo-shop")
    conversation = Conversation.objects.get(pk=session["conversation"]["id"])
    visitor = conversation.visitor
    escalated("demo-blog")
    old = escalated("demo-shop", first_name="Old")
    services.conversation_close(conversation_id=old.pk, advisor=bob)
    assert_counts_exact(demo, api_as)  # the bot has the lead

    # when the visitor answers and asks for a human (bot -> live, unassigned, unread for everyone)
    services.visitor_message_send(visitor=visitor, client_id=new_id(), text="Jean")
    services.visitor_message_send(visitor=visitor, client_id=new_id(), text="ACME")
    conversation.refresh_from_db()
    menu = conversation.messages.exclude(buttons=[]).last()
    human = next(b["id"] for b in menu.buttons if b["label"] == "Talk to a human")
    services.visitor_button_press(visitor=visitor, client_id=new_id(), button=human)
    conversation.refresh_from_db()
    assert conversation.status == "live"
    assert_counts_exact(demo, api_as)

    # take, read, a note only licensed advisors see, a new visitor message
    api_as("alice").post(f"{CONVERSATIONS}/{conversation.pk}/take")
    assert_counts_exact(demo, api_as)
    conversation.refresh_from_db()
    for name in ("alice", "carol"):
        api_as(name).post(f"{CONVERSATIONS}/{conversation.pk}/read", {"seq": conversation.last_seq}, format="json")
    assert_counts_exact(demo, api_as)
    services.advisor_message_send(conversation_id=conversation.pk, advisor=alice, client_id=new_id(),
                                  text="a private note", note=True)
    assert_counts_exact(demo, api_as)  # unread for bob, not for carol (she does not see notes)
    services.visitor_message_send(visitor=visitor, client_id=new_id(), text="still there?")
    assert_counts_exact(demo, api_as)
    services.advisor_message_send(conversation_id=conversation.pk, advisor=alice, client_id=new_id(), text="yes")
    assert_counts_exact(demo, api_as)  # the replier has read up to her reply
    services.conversation_assign(conversation_id=conversation.pk, by=alice, username="bob")
    assert_counts_exact(demo, api_as)

    # close, reopen, close again, and the visitor writing again sends it back to the bot
    services.conversation_close(conversation_id=conversation.pk, advisor=bob)
    assert_counts_exact(demo, api_as)
    services.conversation_reopen(conversation_id=conversation.pk, advisor=carol)
    assert_counts_exact(demo, api_as)
    services.conversation_close(conversation_id=conversation.pk, advisor=bob)
    services.visitor_message_send(visitor=visitor, client_id=new_id(), text="hello again")
    conversation.refresh_from_db()
    assert conversation.status == "bot"
    assert_counts_exact(demo, api_as)

    # "Back to chatbot" from a live conversation
    blog = escalated("demo-blog", first_name="Back")
    services.visitor_back_to_bot(visitor=blog.visitor, client_id=new_id())
    assert Conversation.objects.get(pk=blog.pk).status == "bot"
    assert_counts_exact(demo, api_as)

    # paths outside the services: a bulk move to another site, a bulk status change, a delete
    Conversation.objects.filter(pk=old.pk).update(site=demo.sites["blog"])
    assert_counts_exact(demo, api_as)
    Conversation.objects.filter(site=demo.sites["shop"]).update(status="live", assigned=None)
    assert_counts_exact(demo, api_as)
    Conversation.objects.get(pk=conversation.pk).visitor.delete()
    assert_counts_exact(demo, api_as)


def test_a_live_conversation_without_items_is_not_unread(demo, api_as):
    shop = demo.sites["shop"]
    shop.livechat_only = True
    shop.save()
    body = start_session()
    assert body["conversation"]["status"] == "live"
    assert api_as("bob").get(CONVERSATIONS).json()["counts"]["unread"] == 0
    assert_counts_exact(demo, api_as)
    conversation = Conversation.objects.get(pk=body["conversation"]["id"])
    services.conversation_read(conversation_id=conversation.pk, advisor=demo.advisors["bob"], seq=0)
    services.visitor_message_send(visitor=conversation.visitor, client_id=new_id(), text="hello?")
    assert_counts_exact(demo, api_as)


def many_conversations(demo, count: int = 6) -> None:
    """Conversations in every box on both of alice's sites, with notes, replies and reads."""
    alice, bob = demo.advisors["alice"], demo.advisors["bob"]
    for i in range(count):
        conversation = escalated("demo-shop" if i % 2 else "demo-blog", first_name=f"V{i}")
        services.advisor_message_send(conversation_id=conversation.pk, advisor=alice, client_id=new_id(),
                                      text="a note", note=True)
        if i % 3 == 0:
            services.conversation_take(conversation_id=conversation.pk, advisor=alice)
        if i % 3 == 1:
            services.advisor_message_send(conversation_id=conversation.pk, advisor=alice, client_id=new_id(),
                                          text="hello")
            services.conversation_close(conversation_id=conversation.pk, advisor=alice)
        if i % 4 == 0:
            services.conversation_read(conversation_id=conversation.pk, advisor=bob, seq=conversation.last_seq)
    for i in range(2):
        start_session("demo-shop" if i else "demo-blog")


@pytest.mark.parametrize("box", BOXES)
@pytest.mark.parametrize("filter", FILTERS)
def test_list_takes_four_queries_for_every_box_and_filter(demo, api_as, django_assert_max_num_queries, box,
                                                           filter):
    many_conversations(demo)
    alice = api_as("alice")  # two sites, sees the bot's conversations
    for params in ({}, {"site": "demo-shop"}, {"limit": 2}, {"advisor": "alice"}):
        with django_assert_max_num_queries(LIST_QUERY_BUDGET):
            response = alice.get(CONVERSATIONS, {"box": box, "filter": filter, **params})
        assert response.status_code == 200, response.content
        page = response.json()
        if page["next"]:
            with django_assert_max_num_queries(LIST_QUERY_BUDGET):
                assert alice.get(CONVERSATIONS, {"box": box, "filter": filter, **params,
                                                 "cursor": page["next"]}).status_code == 200


def assert_presented_as_the_full_load(listed: list[dict], advisor: Advisor) -> None:
    """Each listed CONV equals conversation_dict over the conversation loaded whole, with the advisor's read state."""
    reads = {pk: (seq, change) for pk, seq, change in
             ReadState.objects.filter(advisor=advisor).values_list("conversation_id", "seq", "change")}
    for item in listed:
        full = (Conversation.objects.select_related(
            "visitor", "site__chatbot", "assigned__user", "last_message__advisor__user",
            "last_public_message__advisor__user").get(pk=item["id"]))
        seq, change = reads.get(full.pk, (0, 0))
        assert item == conversation_dict(full, licensed=advisor.licensed, read_seq=seq, read_change=change)


def test_list_items_are_the_conversation_as_presented_from_a_full_load(demo, api_as):
    many_conversations(demo)
    for username in ("alice", "bob", "carol"):
        advisor = Advisor.objects.get(user__username=username)
        for box in ("live", "closed"):
            listed = api_as(username).get(CONVERSATIONS, {"box": box, "limit": 100}).json()["results"]
            assert listed
            assert_presented_as_the_full_load(listed, advisor)


def test_list_rows_are_presented_as_the_full_load_with_avatars_images_labels_and_the_bot(demo, api_as):
    # given: conversations in every box, an avatar on the advisors who write and are assigned, an image as the
    # last item of one, a label and a rating on another
    many_conversations(demo)
    Advisor.objects.filter(user__username__in=("alice", "bob")).update(avatar="avatars/face.png")
    imaged = Conversation.objects.filter(status="live").order_by("-updated_at").first()
    Message.objects.filter(pk=imaged.last_message_id).update(image="conversations/photo.jpg", image_width=640,
                                                             image_height=480)
    Message.objects.filter(pk=imaged.last_public_message_id).update(image_url="https://img.example/x.png")
    Conversation.objects.filter(pk=imaged.pk).update(labels=["vip"], rating={"score": 4, "comment": "ok"})
    for username in ("alice", "bob", "carol"):
        advisor = Advisor.objects.get(user__username=username)
        for box in ("live", "closed", "chatbot"):
            # when
            response = api_as(username).get(CONVERSATIONS, {"box": box, "limit": 100})
            if box == "chatbot" and not advisor.sees_chatbot:
                assert response.status_code == 403
                continue
            listed = response.json()["results"]
            # then
            assert listed or box == "chatbot"
            assert_presented_as_the_full_load(listed, advisor)
    shown = api_as("alice").get(CONVERSATIONS, {"box": "live", "limit": 100}).json()["results"]
    assert any(item["last_message"] and item["last_message"]["image_url"] for item in shown)
    assert any(item["assigned"] and item["assigned"]["avatar_url"] for item in shown)


@pytest.mark.parametrize("microsecond", [0, 999, 1000, 586895, 999999])
def test_listed_timestamps_are_written_as_the_detail_writes_them_whatever_the_microseconds(demo, api_as, microsecond):
    """The list's timestamps are written by the database (selectors.ContractTime), the detail's by Python: the same
    text, milliseconds truncated, Z. SQLite stores no fraction at all when the microseconds are 0."""
    # given: every timestamp a row shows set to one instant, in a conversation alice was assigned and answered
    conversation = walk_to_human()
    services.advisor_message_send(conversation_id=conversation.pk, advisor=demo.advisors["alice"],
                                  client_id=new_id(), text="hello")
    instant = datetime(2026, 3, 1, 23, 59, 59, microsecond, tzinfo=timezone.utc)
    Conversation.objects.filter(pk=conversation.pk).update(waiting_since=instant, closed_at=instant,
                                                           created_at=instant, updated_at=instant)
    conversation.refresh_from_db()
    Visitor.objects.filter(pk=conversation.visitor_id).update(first_seen_at=instant)
    Message.objects.filter(pk=conversation.last_message_id).update(created_at=instant)
    alice = api_as("alice")
    # when
    listed = next(item for item in alice.get(CONVERSATIONS, {"box": "live"}).json()["results"]
                  if item["id"] == conversation.pk)
    detail = alice.get(f"{CONVERSATIONS}/{conversation.pk}").json()
    # then
    written = f"2026-03-01T23:59:59.{microsecond // 1000:03d}Z"
    assert (listed["waiting_since"], listed["closed_at"], listed["created_at"], listed["updated_at"],
            listed["visitor"]["first_seen"], listed["last_message"]["created_at"]) == (written,) * 6
    assert listed == detail


def test_list_filters_match_a_naive_filter(demo, api_as):
    many_conversations(demo, count=9)
    alice = Advisor.objects.get(user__username="alice")
    reads = dict(ReadState.objects.filter(advisor=alice).values_list("conversation_id", "seq"))
    everything = list(Conversation.objects.filter(site__in=alice.sites.all()).order_by("-updated_at", "-id"))
    wanted = {
        "all": lambda c: True,
        "unassigned": lambda c: c.assigned_id is None,
        "unread": lambda c: c.status != "bot" and c.last_seq > reads.get(c.pk, 0),
        "mine": lambda c: c.assigned_id == alice.pk,
    }
    for box, status in (("live", "live"), ("closed", "closed"), ("chatbot", "bot")):
        for filter, keep in wanted.items():
            seen, cursor = [], None
            while True:
                page = api_as("alice").get(CONVERSATIONS, {"box": box, "filter": filter, "limit": 2,
                                                           **({"cursor": cursor} if cursor else {})}).json()
                seen += [c["id"] for c in page["results"]]
                cursor = page["next"]
                if not cursor:
                    break
            assert seen == [c.pk for c in everything if c.status == status and keep(c)], (box, filter)


def test_a_first_page_is_compiled_once_and_reads_the_rows_of_each_request(demo, api_as):
    many_conversations(demo, count=4)
    alice = demo.advisors["alice"]
    selectors._first_page.cache_clear()
    first = api_as("alice").get(CONVERSATIONS, {"box": "live"}).json()["results"]
    oldest = first[-1]["id"]

    # a visitor writes in the conversation at the bottom of the page: it moves to the top
    conversation = Conversation.objects.get(pk=oldest)
    services.visitor_message_send(visitor=conversation.visitor, client_id=new_id(), text="still there?")
    again = api_as("alice").get(CONVERSATIONS, {"box": "live"}).json()["results"]

    assert [c["id"] for c in again] == [oldest] + [c["id"] for c in first if c["id"] != oldest]
    assert again[0]["last_message"]["text"] == "still there?"
    assert selectors._first_page.cache_info().hits >= 1  # the second list ran the SQL compiled for the first
    compiled = selectors._first_page(alice.pk, alice.licensed, alice.sees_chatbot, alice.account_id,
                                     tuple(sorted(alice.sites.values_list("pk", flat=True))), "live", "all", None,
                                     None, 25)
    query = selectors._page_query(alice, sorted(alice.sites.values_list("pk", flat=True)), box="live",
                                  filter="all", assigned_to=None, label=None, limit=25)
    assert compiled.rows() == list(query.order_by(*selectors.NEWEST_FIRST)[:26])  # values and types as the ORM's


def test_a_next_page_is_compiled_once_per_shape_and_each_cursor_reads_its_own_rows(demo, api_as):
    many_conversations(demo, count=8)
    alice = demo.advisors["alice"]
    site_ids = sorted(alice.sites.values_list("pk", flat=True))
    selectors._next_page.cache_clear()
    pages, cursor = [], None
    while True:
        page = api_as("alice").get(CONVERSATIONS, {"box": "live", "limit": 2,
                                                   **({"cursor": cursor} if cursor else {})}).json()
        pages.append([c["id"] for c in page["results"]])
        cursor = page["next"]
        if not cursor:
            break
    assert len(pages) >= 3  # two pages past a cursor: the second reused the first's SQL where it was compiled
    assert [pk for page in pages for pk in page] == list(
        Conversation.objects.filter(status="live").order_by("-updated_at", "-id").values_list("pk", flat=True))

    compiled = selectors._next_page(alice.pk, alice.licensed, alice.sees_chatbot, alice.account_id, tuple(site_ids),
                                    "live", "all", None, None, 2)
    if connection.vendor == "sqlite":  # datetimes reach SQLite as text: the ORM builds every next page there
        assert compiled is None
        return
    assert selectors._next_page.cache_info().hits >= 1
    for after in Conversation.objects.filter(status="live").order_by("-updated_at", "-id")[:3]:
        cursor = selectors.Cursor(after.updated_at, after.id)
        query = selectors._page_query(alice, site_ids, box="live", filter="all", assigned_to=None, label=None,
                                      limit=2, after=cursor)
        assert compiled.rows(after.updated_at, after.id) == list(query.order_by(*selectors.NEWEST_FIRST)[:3])


def test_compiled_rows_refuse_a_placeholder_the_query_does_not_take():
    from livechat.compiled import CompiledRows, PlaceholderNotFound

    with pytest.raises(PlaceholderNotFound):
        CompiledRows(Conversation.objects.filter(pk=2**31 - 3).values_list("pk"), placeholders=(2**31 - 4,))
    compiled = CompiledRows(Conversation.objects.filter(pk__in=[2**31 - 3]).values_list("pk"),
                            placeholders=(2**31 - 3,))
    with pytest.raises(TypeError):
        compiled.rows()


def test_compiled_rows_take_only_a_values_list():
    from livechat.compiled import CompiledRows

    with pytest.raises(TypeError):
        CompiledRows(Conversation.objects.all())
    with pytest.raises(TypeError):
        CompiledRows(Conversation.objects.values_list("pk", flat=True))


def test_detail_and_messages_take_a_fixed_number_of_queries(demo, api_as, django_assert_max_num_queries):
    many_conversations(demo)
    conversation = Conversation.objects.filter(status="live").first()
    alice = api_as("alice")
    with django_assert_max_num_queries(2):
        assert alice.get(f"{CONVERSATIONS}/{conversation.pk}").status_code == 200
    with django_assert_max_num_queries(3):
        assert alice.get(f"{CONVERSATIONS}/{conversation.pk}/messages").status_code == 200
    with django_assert_max_num_queries(3):
        assert alice.get(f"{CONVERSATIONS}/{conversation.pk}/messages", {"before": 5, "limit": 2}).status_code == 200


def test_advisor_loads_with_its_sites_in_one_query(demo, django_assert_num_queries):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=demo.advisors["alice"].user)
    with django_assert_num_queries(1):
        loaded = selectors.advisor_for_token(token.key)
        advisor = selectors.advisor_for_user(loaded.user)
        assert advisor.username == "alice"
        assert sorted(advisor.site_id_by_key) == ["demo-blog", "demo-shop"]
        assert {s.name for s in advisor.site_by_id.values()} == {s.name for s in demo.sites.values()}
    with django_assert_num_queries(1):
        assert selectors.advisor_for_user(demo.advisors["bob"].user).site_ids == [demo.sites["shop"].pk]
    not_an_advisor = Token.objects.create(user=type(token.user).objects.create(username="visitor-person"))
    with django_assert_num_queries(1):
        assert selectors.advisor_for_user(selectors.advisor_for_token(not_an_advisor.key).user) is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_reads_replies_and_status_changes_keep_the_copies_exact(demo):
    """The race the triggers are built for: an advisor marking read while others write to the conversation
    (and she replies herself, which also moves her read position), under PostgreSQL's READ COMMITTED."""
    import threading

    from django.db import connections

    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes every write; the row-lock interleavings exist on PostgreSQL only")
    conversation = escalated()
    alice, bob = demo.advisors["alice"], demo.advisors["bob"]
    errors: list[BaseException] = []
    refusals: list[int] = []
    barrier = threading.Barrier(5)

    def run(work):
        def body():
            try:
                barrier.wait()
                for i in range(15):
                    try:
                        work(i)
                    except Refused:  # a rule said no (replying to or closing a closed conversation): fine here
                        refusals.append(i)
            except BaseException as error:
                errors.append(error)
            finally:
                connections.close_all()
        return threading.Thread(target=body)

    def reads(advisor):
        def work(i):
            latest = Conversation.objects.get(pk=conversation.pk)
            services.conversation_read(conversation_id=latest.pk, advisor=advisor, seq=latest.last_seq)
        return work

    def visitor_writes(i):
        services.visitor_message_send(visitor=conversation.visitor, client_id=new_id(), text=f"v{i}")

    def alice_replies(i):
        services.advisor_message_send(conversation_id=conversation.pk, advisor=alice, client_id=new_id(),
                                      text=f"a{i}", note=bool(i % 3 == 0))

    def status_changes(i):
        if i % 2 == 0:
            services.conversation_close(conversation_id=conversation.pk, advisor=bob)
        else:
            services.conversation_reopen(conversation_id=conversation.pk, advisor=bob)

    threads = [run(reads(alice)), run(reads(bob)), run(visitor_writes), run(alice_replies), run(status_changes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors  # no deadlock, no lost update
    assert len(refusals) < 5 * 15
    assert_tallies_match_a_rebuild()


def test_the_inbox_page_session_lists_in_six_queries(demo, client, django_assert_max_num_queries):
    """The browser's path: session and user (Django's middleware), then advisor and sites in one query."""
    many_conversations(demo)
    client.force_login(demo.advisors["alice"].user)
    with django_assert_max_num_queries(LIST_QUERY_BUDGET + 2):
        response = client.get(CONVERSATIONS)
    assert response.status_code == 200
    assert response.json()["counts"] == naive_counts(Advisor.objects.get(user__username="alice"))
    assert client.get("/api/inbox/me").json()["sites"] == [{"key": "demo-blog", "name": "Blog", "color": "#16a34a"},
                                                           {"key": "demo-shop", "name": "Shop", "color": "#2563eb"}]

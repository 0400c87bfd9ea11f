"""Lookups compiled to SQL once (livechat.compiled.CompiledLookup) give what the ORM gives, on either database; the
writes compiled once (insert, save_fields) write what Model.save() writes."""
import pytest
from django.db.models.expressions import RawSQL

from conversations import selectors, services
from conversations.changes import next_change_sql
from conversations.models import Conversation, Message, Visitor
from conversations.tests.conftest import escalated, new_id, start_session
from livechat.compiled import CompiledLookup, insert, save_fields

pytestmark = pytest.mark.django_db


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def test_a_compiled_lookup_returns_the_row_and_its_related_rows_as_the_orm_does(demo, django_assert_num_queries):
    conversation = escalated()
    services.advisor_message_send(conversation_id=conversation.pk, advisor=demo.advisors["alice"],
                                  client_id=new_id(), text="hello")  # assigns it: a user two joins away
    lookup = CompiledLookup(lambda pk: Conversation.objects.select_related("site__chatbot", "visitor",
                                                                           "assigned__user").filter(pk=pk)[:2], -1)
    orm = Conversation.objects.select_related("site__chatbot", "visitor", "assigned__user").get(pk=conversation.pk)

    for _ in range(2):  # compiled on the first call, reused on the second
        with django_assert_num_queries(1):
            found = lookup.get(conversation.pk)
            related = (found.site, found.site.chatbot, found.visitor, found.assigned, found.assigned.user)
        assert _fields(found) == _fields(orm)  # values and types (datetimes, JSON) as the ORM's
        assert [_fields(row) for row in related] == [_fields(row) for row in (
            orm.site, orm.site.chatbot, orm.visitor, orm.assigned, orm.assigned.user)]
        assert found._state.db == orm._state.db and not found._state.adding


def test_a_compiled_lookup_with_no_row_or_an_empty_relation(demo):
    conversation = escalated()  # nobody assigned yet
    lookup = CompiledLookup(lambda pk: Conversation.objects.select_related("assigned__user").filter(pk=pk)[:2], -1)
    assert lookup.get(conversation.pk).assigned is None
    assert lookup.get(conversation.pk + 1000) is None


def test_a_placeholder_that_is_not_exactly_one_parameter_is_refused(demo):
    twice = CompiledLookup(lambda key: Visitor.objects.filter(token_hash=key, site__key=key)[:2], "\x01p")
    with pytest.raises(ValueError):
        twice.get("anything")


def test_a_token_names_its_visitor_on_its_own_site_only(demo):
    shop, blog = start_session("demo-shop"), start_session("demo-blog")
    visitor = selectors.visitor_for_token(token=shop["token"], site=demo.sites["shop"])
    assert visitor.pk == shop["visitor"]["id"] and visitor.conversation.pk == shop["conversation"]["id"]
    assert selectors.visitor_for_token(token=shop["token"], site_key="demo-shop").pk == visitor.pk
    assert selectors.visitor_for_token(token=shop["token"], site=demo.sites["blog"]) is None
    assert selectors.visitor_for_token(token=shop["token"], site_key="demo-blog") is None
    assert selectors.visitor_for_token(token=blog["token"], site_key="demo-shop") is None
    assert selectors.visitor_for_token(token=shop["token"] + "x") is None
    assert selectors.site_for_key("demo-shop") == demo.sites["shop"]
    assert selectors.site_for_key("demo-shop").chatbot == demo.sites["shop"].chatbot
    assert selectors.site_for_key("no-such-site") is None


def test_a_token_lookup_brings_its_user_advisor_and_sites_as_the_orm_does(demo, api_as, django_assert_num_queries):
    from rest_framework.authtoken.models import Token

    api_as("alice")  # makes her token
    key = Token.objects.get(user__username="alice").key
    orm = selectors._tokens_with_advisor().get(key=key)
    with django_assert_num_queries(1):
        token = selectors.advisor_for_token(key)
        advisor = token.user.advisor
    assert _fields(token) == _fields(orm) and _fields(token.user) == _fields(orm.user)
    assert _fields(advisor) == _fields(orm.user.advisor)
    assert token.advisor_sites == orm.advisor_sites  # the annotation, converted as the ORM converts it
    assert advisor.site_ids == sorted(site.pk for site in demo.advisors["alice"].sites.all())
    assert selectors.advisor_for_token(key[:-1] + ("0" if key[-1] != "0" else "1")) is None


@pytest.mark.django_db(transaction=True)  # outside the test's own transaction
def test_a_compiled_row_lock_outside_a_transaction_is_refused_as_the_orm_refuses_it(demo):
    from django.db import transaction
    from django.db.transaction import TransactionManagementError

    conversation = escalated()
    lock = CompiledLookup(lambda pk: Conversation.objects.select_for_update().filter(pk=pk)[:2], -1)
    with transaction.atomic():
        assert lock.get(conversation.pk).pk == conversation.pk
    with pytest.raises(TransactionManagementError):
        lock.get(conversation.pk)


# ------------------------------------------------------------------------------ writes (insert, save_fields)


def test_an_inserted_row_is_the_row_model_save_writes(demo, django_assert_num_queries):
    conversation = escalated()
    fields = dict(conversation=conversation, kind=Message.Kind.TEXT, sender=Message.Sender.BOT, text="Bonjour ?",
                  buttons=[{"id": "b-1", "label": "Oui"}], input={"variable": "PRENOM"}, image_url="")
    by_orm = Message(seq=conversation.last_seq + 1, **fields)
    by_orm.save()
    compiled_row = Message(seq=conversation.last_seq + 2, **fields)
    with django_assert_num_queries(1):
        insert(compiled_row)

    assert compiled_row.pk is not None and compiled_row.pk != by_orm.pk
    assert not compiled_row._state.adding and compiled_row._state.db == by_orm._state.db
    assert compiled_row.created_at is not None  # auto_now_add, set as Model.save sets it
    stored, expected = Message.objects.get(pk=compiled_row.pk), Message.objects.get(pk=by_orm.pk)
    differing = {"id", "seq", "created_at"}
    assert {k: v for k, v in _fields(stored).items() if k not in differing} == \
           {k: v for k, v in _fields(expected).items() if k not in differing}
    assert stored.created_at == compiled_row.created_at


def test_an_insert_refused_by_a_constraint_writes_nothing(demo):
    from django.db import IntegrityError, transaction

    conversation = escalated()
    taken = Message(conversation=conversation, seq=conversation.last_seq, kind="text", sender="bot", text="again")
    with pytest.raises(IntegrityError), transaction.atomic():
        insert(taken)  # (conversation, seq) is unique
    assert Message.objects.filter(conversation=conversation, text="again").count() == 0


def test_saved_fields_are_written_and_only_those(demo, django_assert_num_queries):
    conversation = escalated()
    conversation.refresh_from_db()
    conversation.awaiting_email = True
    conversation.rating = 4  # changed in memory, not named: not written
    conversation.change = next_change_sql()
    with django_assert_num_queries(1):
        save_fields(conversation, ["awaiting_email", "change"])

    stored = Conversation.objects.get(pk=conversation.pk)
    assert stored.awaiting_email is True and stored.rating is None
    assert stored.change > 0 and isinstance(conversation.change, RawSQL)  # left as Model.save leaves it
    assert save_fields(conversation, []) is None  # nothing named: no query


def test_saving_fields_of_a_deleted_row_is_refused(demo):
    from django.db import DatabaseError

    conversation = escalated()
    Conversation.objects.filter(pk=conversation.pk).delete()
    conversation.awaiting_email = True
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        save_fields(conversation, ["awaiting_email"])


def test_a_model_with_a_save_receiver_is_saved_by_model_save(demo):
    from django.db.models.signals import post_save

    conversation = escalated()
    heard = []

    def receiver(sender, instance, **kwargs):
        heard.append((instance.pk, kwargs.get("update_fields"), kwargs.get("created")))

    post_save.connect(receiver, sender=Message)
    try:
        item = Message(conversation=conversation, seq=conversation.last_seq + 1, kind="text", sender="bot", text="x")
        insert(item)
        item.text = "y"
        save_fields(item, ["text"])
    finally:
        post_save.disconnect(receiver, sender=Message)
    assert heard == [(item.pk, None, True), (item.pk, frozenset({"text"}), False)]
    assert Message.objects.get(pk=item.pk).text == "y"


def test_an_expression_other_than_raw_sql_is_left_to_the_orm(demo):
    from django.db.models import F

    conversation = escalated()
    visitor = Visitor.objects.get(pk=conversation.visitor_id)
    sessions = visitor.sessions
    visitor.sessions = F("sessions") + 1
    save_fields(visitor, ["sessions"])
    assert Visitor.objects.get(pk=visitor.pk).sessions == sessions + 1


def test_a_number_the_update_takes_is_read_back_by_the_same_statement(demo, django_assert_num_queries):
    conversation = escalated()
    conversation.refresh_from_db()
    before = conversation.change
    conversation.change = next_change_sql()
    with django_assert_num_queries(1):
        save_fields(conversation, ["change"], read_back="change")
        number = conversation.change  # no query of its own (a deferred field would load here where none returns)
    assert number > before and number == Conversation.objects.get(pk=conversation.pk).change


def test_a_compiled_page_takes_several_values_and_returns_the_rows_the_orm_returns(demo, django_assert_num_queries):
    conversation = escalated()
    services.advisor_message_send(conversation_id=conversation.pk, advisor=demo.advisors["alice"],
                                  client_id=new_id(), text="a note", note=True)
    services.advisor_message_send(conversation_id=conversation.pk, advisor=demo.advisors["alice"],
                                  client_id=new_id(), text="hello")
    page = CompiledLookup(lambda pk, after: Message.objects.select_related("advisor__user").filter(
        conversation_id=pk, seq__gt=after).exclude(kind=Message.Kind.NOTE).order_by("seq")[:3], (-1, 2 ** 31 - 2))
    for after in (0, 2, 0):  # compiled on the first call
        orm = list(Message.objects.select_related("advisor__user").filter(
            conversation_id=conversation.pk, seq__gt=after).exclude(kind=Message.Kind.NOTE).order_by("seq")[:3])
        with django_assert_num_queries(1):
            found = page.all(conversation.pk, after)
            authors = [item.advisor and item.advisor.user.username for item in found]
        assert [_fields(item) for item in found] == [_fields(item) for item in orm]
        assert len(found) == 3 and found[0].seq > after
        assert authors == [item.advisor and item.advisor.user.username for item in orm]
    assert "a note" not in [item.text for item in page.all(conversation.pk, 0)]
    assert page.all(conversation.pk + 1000, 0) == []
    with pytest.raises(TypeError):
        page.all(conversation.pk)


def test_json_columns_decode_as_the_fields_own_converter_decodes_them(demo):
    from django.db import connection
    from django.db.models.expressions import Col

    from livechat.compiled import _faster

    field = Visitor._meta.get_field("variables")
    fast = _faster(field.from_db_value)
    column = Col(Visitor._meta.db_table, field)
    for stored in ('{"PRENOM": "Zoé", "n": 1.5, "nested": [null, true, {"a": []}]}', "[]", '"text"', "NaN",
                   "123456789012345678901234567890", "not json", None):
        assert repr(fast(stored, column, connection)) == repr(field.from_db_value(stored, column, connection))  # NaN
    assert fast("123456789012345678901234567890", column, connection) == 123456789012345678901234567890


def test_a_conversations_json_reads_back_through_a_compiled_lookup(demo):
    conversation = escalated()
    Visitor.objects.filter(pk=conversation.visitor_id).update(variables={"PRENOM": "Zoé", "big": 2 ** 70})
    lookup = CompiledLookup(lambda pk: Conversation.objects.select_related("visitor").filter(pk=pk)[:2], -1)
    assert lookup.get(conversation.pk).visitor.variables == {"PRENOM": "Zoé", "big": 2 ** 70}


def test_rows_read_in_the_binary_format_are_the_rows_the_orm_reads(demo):
    """CompiledRows(binary=True): every column type the inbox list reads (integers, text, booleans, JSON of every
    shape, timestamps, NULLs) comes back as Django's own text-format query gives it."""
    from livechat.compiled import CompiledRows

    conversation = escalated()
    services.advisor_message_send(conversation_id=conversation.pk, advisor=demo.advisors["alice"],
                                  client_id=new_id(), text="Zoé ✓")
    Visitor.objects.filter(pk=conversation.visitor_id).update(
        variables={"PRENOM": "Zoé", "big": 2 ** 70, "n": 1.5, "nested": [None, True, {"a": []}]})
    Conversation.objects.filter(pk=conversation.pk).update(labels=["vip"], rating=None)
    columns = ("pk", "status", "awaiting_email", "labels", "rating", "updated_at", "closed_at", "change",
               "visitor__variables", "visitor__first_seen_at", "last_message__text", "last_message__buttons",
               "last_message__input", "last_message__created_at")
    queryset = Conversation.objects.filter(pk=conversation.pk).values_list(*columns)
    orm = list(queryset)
    rows = CompiledRows(queryset, binary=True).rows()
    assert rows == orm
    assert [type(value) for value in rows[0]] == [type(value) for value in orm[0]]
    assert rows[0][columns.index("updated_at")].tzinfo == orm[0][columns.index("updated_at")].tzinfo
    assert rows[0][columns.index("visitor__variables")]["big"] == 2 ** 70


@pytest.mark.skipif("not __import__('django.db').db.connection.vendor == 'postgresql'")
def test_a_jsonb_value_of_an_unknown_binary_version_is_refused():
    from psycopg import DataError

    from livechat.postgresql.base import _JsonbAsText

    loader = _JsonbAsText(0)
    assert loader.load(b'\x01{"a": [1]}') == '{"a": [1]}'
    with pytest.raises(DataError):
        loader.load(b'\x02{"a": [1]}')


# ------------------------------------------------------------------------------ on the event loop's connections


@pytest.mark.django_db(transaction=True)  # the loop's connections see committed rows only
def test_on_the_loop_a_compiled_lookup_returns_what_it_returns_in_a_thread(demo, api_as):
    import asyncio

    from django.db import connection
    from rest_framework.authtoken.models import Token

    from livechat import loop_io
    from livechat.compiled import NotCompiled

    if connection.vendor != "postgresql":
        pytest.skip("the loop's connections are PostgreSQL's (CI runs both)")
    api_as("alice")
    key = Token.objects.get(user__username="alice").key
    conversation = escalated()
    fresh = CompiledLookup(lambda pk: Conversation.objects.filter(pk=pk)[:2], -1)

    async def on_the_loop():
        own = loop_io._Connections(1)
        try:
            async with own.borrow() as loop_connection:
                with pytest.raises(NotCompiled):  # compiling may ask the database: a thread's first
                    await fresh.get_on_loop(loop_connection, conversation.pk)
                return (await selectors.advisor_for_token_on_loop(loop_connection, key),
                        await selectors.advisor_for_token_on_loop(loop_connection, "0" * 40),
                        await selectors.access_conversation_for_write_on_loop(
                            loop_connection, advisor=in_thread.user.advisor, conversation_id=conversation.pk),
                        await selectors.access_conversation_for_write_on_loop(
                            loop_connection, advisor=in_thread.user.advisor, conversation_id=10 ** 12),
                        await selectors.access_conversation_for_write_on_loop(
                            loop_connection, advisor=in_thread.user.advisor, conversation_id="x"))
        finally:
            own.close()

    in_thread = selectors.advisor_for_token(key)
    accessed = selectors.access_conversation(advisor=in_thread.user.advisor, conversation_id=conversation.pk,
                                             for_write=True)
    token, no_token, loop_accessed, missing, malformed = asyncio.run(on_the_loop())
    assert _fields(token) == _fields(in_thread) and _fields(token.user) == _fields(in_thread.user)
    assert _fields(token.user.advisor) == _fields(in_thread.user.advisor)
    assert token.user.advisor.site_ids == in_thread.user.advisor.site_ids
    assert token.advisor_sites == in_thread.advisor_sites
    assert no_token is None and missing is None and malformed is None
    assert _fields(loop_accessed) == _fields(accessed)

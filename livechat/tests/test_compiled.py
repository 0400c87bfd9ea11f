"""Lookups compiled to SQL once (livechat.compiled.CompiledLookup) give what the ORM gives, on either database."""
import pytest

from conversations import selectors, services
from conversations.models import Conversation, Visitor
from conversations.tests.conftest import escalated, new_id, start_session
from livechat.compiled import CompiledLookup

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

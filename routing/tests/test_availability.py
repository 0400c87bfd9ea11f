"""Advisor status (online / away / offline), capacity, and the advisors list the assign menu uses."""
import asyncio

import pytest
from asgiref.sync import sync_to_async

from conversations import services
from conversations.tests.conftest import escalated, inbox_socket
from routing.services import advisor_availability_set


@pytest.mark.django_db
def test_me_is_offline_without_an_inbox_socket_and_away_when_chosen(demo, api_as, online):
    alice = api_as("alice")
    me = alice.get("/api/inbox/me").json()
    assert (me["status"], me["capacity"]) == ("offline", 0)
    online("alice")
    assert alice.get("/api/inbox/me").json()["status"] == "online"
    answer = alice.patch("/api/inbox/me", {"status": "away"}, format="json")
    assert answer.status_code == 200 and answer.json()["status"] == "away"
    assert alice.patch("/api/inbox/me", {"status": "online"}, format="json").json()["status"] == "online"


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["offline", "busy", "", None, 1])
def test_me_refuses_a_status_that_is_not_chosen(demo, api_as, status):
    alice = api_as("alice")
    answer = alice.patch("/api/inbox/me", {"status": status}, format="json")
    assert answer.status_code == 400 and "status" in answer.json()["fields"]
    assert alice.get("/api/inbox/me").json()["status"] == "offline"


@pytest.mark.django_db(transaction=True)
async def test_an_inbox_socket_makes_its_advisor_online_until_a_while_after_it_closes(demo, tokens, api, settings):
    settings.LIVECHAT = {**settings.LIVECHAT, "ADVISOR_OFFLINE_AFTER_S": 1.5}

    async def status():
        return (await sync_to_async(api["bob"].get)("/api/inbox/me")).json()["status"]

    assert await status() == "offline"
    socket = await inbox_socket(tokens["bob"])
    for _ in range(50):  # the socket sets its presence just after it is accepted
        if await status() == "online":
            break
        await asyncio.sleep(0.05)
    assert await status() == "online"
    await asyncio.sleep(2)  # past the presence's lifetime: the open socket kept refreshing it
    assert await status() == "online"
    await socket.disconnect()
    assert await status() == "online"  # a reload is not an absence
    await asyncio.sleep(2)
    assert await status() == "offline"


@pytest.mark.django_db
def test_advisors_list_gives_status_sites_in_scope_and_live_conversations(demo, api_as, online,
                                                                          django_assert_max_num_queries):
    online("alice", "bob")
    advisor_availability_set(advisor=demo.advisors["bob"], status="away")
    conversation = escalated()
    services.conversation_take(conversation_id=conversation.pk, advisor=demo.advisors["alice"])
    bob = api_as("bob")
    with django_assert_max_num_queries(4):
        listed = {a["username"]: a for a in bob.get("/api/inbox/advisors").json()}
    assert listed["alice"]["status"] == "online" and listed["alice"]["online"] is True
    assert listed["alice"]["live"] == 1
    # bob works on the shop only: alice's blog is none of his business, and the menu offers shop advisors only
    assert listed["alice"]["sites"] == ["demo-shop"]
    assert (listed["bob"]["status"], listed["bob"]["online"], listed["bob"]["live"]) == ("away", False, 0)
    assert listed["carol"]["status"] == "offline"
    everyone = {a["username"]: a for a in api_as("alice").get("/api/inbox/advisors").json()}
    assert everyone["alice"]["sites"] == ["demo-blog", "demo-shop"] and everyone["bob"]["sites"] == ["demo-shop"]


@pytest.mark.django_db
def test_advisors_list_costs_the_same_queries_for_more_advisors(demo, api_as, django_assert_max_num_queries):
    from advisors.services import advisor_create

    for n in range(6):
        advisor_create(account=demo.sites["shop"].account, username=f"extra{n}", email=f"e{n}@x.example",
                       display_name=f"Extra {n}", password=None, sites=[demo.sites["shop"]])
    alice = api_as("alice")
    with django_assert_max_num_queries(4):
        assert len(alice.get("/api/inbox/advisors").json()) == 10


@pytest.mark.django_db
def test_capacity_is_set_in_the_admin(demo, client):
    from routing.models import AdvisorRouting

    client.force_login(demo.advisors["admin"].user)
    bob = demo.advisors["bob"]
    response = client.post("/admin/routing/advisorrouting/add/", {"advisor": bob.pk, "capacity": 3})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert AdvisorRouting.objects.get(advisor=bob).capacity == 3
    page = client.get("/admin/advisors/advisor/").content.decode()
    assert "offline" in page  # the status column of the advisors list

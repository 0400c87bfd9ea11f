"""GET /api/inbox/reports against figures computed by hand on hand-made timelines: a conversation reopened and
closed twice, one never answered, escalations either side of midnight in the account's time zone."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from conversations import services
from conversations.tests.conftest import ORIGIN
from reports.tests.conftest import reply, utc, visitor_escalates

pytestmark = pytest.mark.django_db
REPORTS = "/api/inbox/reports"


def rate(token: str, score: int, comment: str = ""):
    return APIClient().post("/api/widget/rating", {"score": score, "comment": comment}, format="json",
                            HTTP_ORIGIN=ORIGIN, HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.fixture
def timelines(demo, clock):
    """Five conversations (times UTC; the account is in Europe/Paris, UTC+1 in November):
    A reopened and closed twice: escalated 11-24 10:00, alice takes +60 s, replies +90 s, closes 10:10 (rated 4),
      reopens 10:20, closes 11-25 09:00 (rated 5).
    B never answered: escalated 11-24 12:00, admin closes it 12:30 unassigned, unrated.
    C after midnight in Paris: escalated 11-24 23:30 UTC (11-25 00:30 Paris), bob takes +120 s, replies +300 s,
      closes +600 s, rated 2 at 23:41.
    D after midnight the day before: escalated 11-23 23:10 UTC (11-24 00:10 Paris), alice replies +20 s; open.
    E on the blog: escalated 11-24 14:00, alice takes +30 s; never answered, open."""
    account = demo.sites["shop"].account
    account.timezone = "Europe/Paris"
    account.save()
    alice, bob, admin = demo.advisors["alice"], demo.advisors["bob"], demo.advisors["admin"]

    clock.at(utc(2026, 11, 23, 23, 10))
    d, _ = visitor_escalates()
    clock.after(20)
    reply(d, alice)

    clock.at(utc(2026, 11, 24, 10, 0))
    a, a_token = visitor_escalates()
    clock.after(60)
    services.conversation_take(conversation_id=a.pk, advisor=alice)
    clock.after(30)
    reply(a, alice)
    clock.at(utc(2026, 11, 24, 10, 10))
    services.conversation_close(conversation_id=a.pk, advisor=alice)
    clock.after(60)
    assert rate(a_token, 4, "Quick").status_code == 201
    clock.at(utc(2026, 11, 24, 10, 20))
    services.conversation_reopen(conversation_id=a.pk, advisor=alice)

    clock.at(utc(2026, 11, 24, 12, 0))
    b, _ = visitor_escalates()
    clock.after(1800)
    services.conversation_close(conversation_id=b.pk, advisor=admin)

    clock.at(utc(2026, 11, 24, 14, 0))
    e, _ = visitor_escalates("demo-blog")
    clock.after(30)
    services.conversation_take(conversation_id=e.pk, advisor=alice)

    clock.at(utc(2026, 11, 24, 23, 30))
    c, c_token = visitor_escalates()
    clock.after(120)
    services.conversation_take(conversation_id=c.pk, advisor=bob)
    clock.after(180)
    reply(c, bob)
    clock.after(300)
    services.conversation_close(conversation_id=c.pk, advisor=bob)
    clock.after(60)
    assert rate(c_token, 2).status_code == 201

    clock.at(utc(2026, 11, 25, 9, 0))
    services.conversation_close(conversation_id=a.pk, advisor=alice)
    clock.after(60)
    assert rate(a_token, 5).status_code == 201
    return {"a": a, "b": b, "c": c, "d": d, "e": e}


def get(api_as, username: str, **params):
    response = api_as(username).get(REPORTS, params)
    assert response.status_code == 200, response.content
    return response.json()


def advisor_row(username, name, closed=0, first=None, csat=None):
    return {"username": username, "name": name, "closed": closed, "first_response_s_p50": first,
            "csat_average": csat}


def test_staff_see_every_figure_of_two_days_in_the_accounts_time_zone(timelines, api_as):
    report = get(api_as, "admin", **{"from": "2026-11-24", "to": "2026-11-25"})

    assert report == {
        "conversations": {"started": 5, "escalated": 5, "closed": 3},
        # waiting: A 60, C 120, D 20, E 30 (B never taken); first response: A 90, C 300, D 20 (B, E never answered)
        "waiting_s": {"p50": 45.0, "p90": 102.0},
        "first_response_s": {"p50": 90.0, "p90": 258.0},
        # resolution: A to its last close 82,800, B 1,800, C 600
        "resolution_s": {"p50": 1800.0, "p90": 66600.0},
        "csat": {"count": 3, "average": 3.67, "distribution": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}},
        "by_day": [{"date": "2026-11-24", "started": 4, "escalated": 4, "closed": 1},
                   {"date": "2026-11-25", "started": 1, "escalated": 1, "closed": 2}],
        "by_advisor": [advisor_row("admin", "Admin"),
                       advisor_row("alice", "Alice", closed=1, first=55.0, csat=4.5),
                       advisor_row("bob", "Bob", closed=1, first=300.0, csat=2.0),
                       advisor_row("carol", "Carol")],
    }


def test_one_day_ends_at_midnight_in_the_accounts_time_zone(timelines, api_as):
    report = get(api_as, "admin", **{"from": "2026-11-24", "to": "2026-11-24"})

    assert report["conversations"] == {"started": 4, "escalated": 4, "closed": 1}  # A, B, D, E; B closed
    assert report["waiting_s"] == {"p50": 30.0, "p90": 54.0}  # A 60, D 20, E 30
    assert report["first_response_s"] == {"p50": 55.0, "p90": 83.0}  # A 90, D 20
    assert report["resolution_s"] == {"p50": 1800.0, "p90": 1800.0}  # B
    assert report["csat"]["count"] == 1 and report["csat"]["average"] == 4.0  # C's was after midnight in Paris


def test_the_same_day_in_utc_holds_other_conversations(timelines, api_as, demo):
    account = demo.sites["shop"].account
    account.timezone = "UTC"
    account.save()

    report = get(api_as, "admin", **{"from": "2026-11-24", "to": "2026-11-24"})

    assert report["conversations"] == {"started": 4, "escalated": 4, "closed": 2}  # A, B, C, E; B and C closed
    assert report["csat"]["count"] == 2 and report["csat"]["average"] == 3.0


def test_a_site_filter_keeps_its_own_conversations(timelines, api_as):
    report = get(api_as, "admin", site="demo-blog", **{"from": "2026-11-24", "to": "2026-11-25"})

    assert report["conversations"] == {"started": 1, "escalated": 1, "closed": 0}
    assert report["waiting_s"] == {"p50": 30.0, "p90": 30.0}
    assert report["first_response_s"] == {"p50": None, "p90": None}
    assert report["csat"] == {"count": 0, "average": None, "distribution": {str(n): 0 for n in range(1, 6)}}


def test_an_advisor_sees_only_their_own_figures(timelines, api_as):
    own = get(api_as, "alice", **{"from": "2026-11-24", "to": "2026-11-25"})

    assert own["conversations"] == {"started": 3, "escalated": 3, "closed": 1}  # A, D, E; A closed
    assert own["waiting_s"] == {"p50": 30.0, "p90": 54.0}
    assert own["first_response_s"] == {"p50": 55.0, "p90": 83.0}
    assert own["resolution_s"] == {"p50": 82800.0, "p90": 82800.0}
    assert own["csat"]["count"] == 2 and own["csat"]["average"] == 4.5
    assert own["by_advisor"] == [advisor_row("alice", "Alice", closed=1, first=55.0, csat=4.5)]
    # staff asking for alice see the same
    assert get(api_as, "admin", advisor="alice", **{"from": "2026-11-24", "to": "2026-11-25"}) == own


def test_what_the_report_refuses(timelines, api_as):
    alice, bob = api_as("alice"), api_as("bob")
    assert alice.get(REPORTS, {"advisor": "bob"}).json()["code"] == "forbidden"
    assert alice.get(REPORTS, {"advisor": "bob"}).status_code == 403
    assert bob.get(REPORTS, {"site": "demo-blog"}).status_code == 404  # not one of bob's sites
    assert api_as("admin").get(REPORTS, {"advisor": "nobody"}).status_code == 404
    for params in ({"from": "2026-11-31"}, {"from": "24/11/2026"}, {"from": "2026-11-25", "to": "2026-11-24"},
                   {"from": "2025-01-01", "to": "2026-11-24"}):
        response = alice.get(REPORTS, params)
        assert response.status_code == 400 and response.json()["code"] == "bad_request", params
    assert APIClient().get(REPORTS).status_code in (401, 403)
    assert alice.get(REPORTS, {"format": "csv", "from": "x"}).json()["code"] == "bad_request"
    assert alice.get(REPORTS, {"format": "xml"}).json()["code"] == "bad_request"


def test_csv_export_has_the_days_then_the_advisors(timelines, api_as):
    response = api_as("admin").get(REPORTS, {"from": "2026-11-24", "to": "2026-11-25", "format": "csv"},
                                   HTTP_ACCEPT="application/json")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'filename="report-2026-11-24-2026-11-25.csv"' in response["Content-Disposition"]
    assert response.content.decode().split("\r\n") == [
        "date,started,escalated,closed", "2026-11-24,4,4,1", "2026-11-25,1,1,2", "",
        "username,name,closed,first_response_s_p50,csat_average", "admin,Admin,0,,", "alice,Alice,1,55.0,4.5",
        "bob,Bob,1,300.0,2.0", "carol,Carol,0,,", ""]


@pytest.mark.parametrize("username", ["admin", "alice"])
def test_a_constant_number_of_queries_whatever_the_range(timelines, api_as, username):
    client = api_as(username)
    counts = []
    for params in ({"from": "2026-11-24", "to": "2026-11-24"}, {"from": "2026-09-01", "to": "2026-11-29"},
                   {"from": "2025-12-01", "to": "2026-11-30", "site": "demo-shop"}):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(REPORTS, params).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1] == counts[2] <= 13, counts


def test_the_day_the_clocks_go_back_has_25_hours(demo, clock, api_as):
    account = demo.sites["shop"].account
    account.timezone = "Europe/Paris"  # summer time ends on 2026-10-25 at 03:00 (01:00 UTC)
    account.save()
    for moment in (utc(2026, 10, 24, 21, 59),  # 23:59 on the 24th, summer time
                   utc(2026, 10, 24, 22, 0),   # 00:00 on the 25th, summer time
                   utc(2026, 10, 25, 22, 59),  # 23:59 on the 25th, winter time
                   utc(2026, 10, 25, 23, 0)):  # 00:00 on the 26th
        clock.at(moment)
        visitor_escalates()

    report = get(api_as, "admin", **{"from": "2026-10-24", "to": "2026-10-26"})

    assert [(d["date"], d["escalated"]) for d in report["by_day"]] == [
        ("2026-10-24", 1), ("2026-10-25", 2), ("2026-10-26", 1)]

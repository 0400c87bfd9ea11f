"""The REST API's JSON (livechat/renderers.py): orjson writes exactly the bytes DRF's JSONRenderer wrote."""
import datetime
import decimal
import uuid

import pytest
from django.utils import timezone
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer

from livechat.renderers import OrjsonRenderer

UTC_NOON = datetime.datetime(2026, 12, 4, 12, 0, 1, 234567, tzinfo=datetime.timezone.utc)


def _body() -> dict:
    """What the API's responses hold, and the types DRF's encoder writes its own way."""
    return {
        "results": [{"id": 1, "text": "Bonjour, ça va ? 👋", "unread": True, "rating": None, "labels": [],
                     "variables": {"PRENOM": "Zoé", "n": 3}, "width": 1.5, "nested": {"a": [1, [2, {"b": None}]]}}],
        "next": None,
        "at": UTC_NOON,
        "paris": UTC_NOON.astimezone(datetime.timezone(datetime.timedelta(hours=1))),
        "naive_day": datetime.date(2026, 12, 4),
        "time": datetime.time(9, 30),
        "duration": datetime.timedelta(minutes=3),
        "amount": decimal.Decimal("12.50"),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "lazy": gettext_lazy("This field is required."),
        "tuple": (1, "two"),
        "by_id": {7: "seven"},
        "control": "tab\tnewline\nquote\"backslash\\ nul\x00 line and paragraph separators\u2028\u2029",
        "big": 2 ** 53 + 1,
    }


def test_the_bytes_are_drfs():
    assert OrjsonRenderer().render(_body()) == JSONRenderer().render(_body())


def test_the_dates_are_written_as_drf_writes_them():
    now = timezone.now()
    rendered = OrjsonRenderer().render({"at": UTC_NOON, "now": now})
    assert rendered.startswith(b'{"at":"2026-12-04T12:00:01.234567Z","now":"')
    assert rendered == JSONRenderer().render({"at": UTC_NOON, "now": now})


def test_nothing_renders_as_an_empty_body():
    assert OrjsonRenderer().render(None) == b""


def test_an_indent_asked_for_is_given():
    rendered = OrjsonRenderer().render({"a": [1]}, "application/json; indent=2")
    assert rendered == JSONRenderer().render({"a": [1]}, "application/json; indent=2")
    assert b"\n  " in rendered


def test_what_neither_encoder_knows_is_refused():
    with pytest.raises(TypeError):
        OrjsonRenderer().render({"object": object()})


@pytest.mark.django_db
def test_the_api_answers_with_it(client):
    response = client.get("/api/inbox/conversations")  # no credentials: the contract's error, in JSON
    assert response.status_code in (401, 403)
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] in ("unauthorized", "forbidden")

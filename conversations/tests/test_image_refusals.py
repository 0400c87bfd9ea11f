"""A refused upload says what is wrong in plain words, for the widget and the inbox to show as they are."""
import re

import pytest

from conversations.tests.conftest import escalated, new_id, start_session
from conversations.tests.test_api import CONVERSATIONS
from conversations.tests.test_images import png, png_bomb, upload

pytestmark = pytest.mark.django_db

@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


CLASS_NAME = re.compile(r"\b[A-Z][a-z]+(?:[A-Z][a-z]+)+\b|Error\b|\(\w+\)")


@pytest.mark.parametrize("content", [
    b"this is plain text, not an image",
    png()[:40],  # a truncated PNG: Pillow raises on it
    png_bomb(),
])
def test_a_refused_image_is_explained_in_plain_words(demo, content):
    response = upload(start_session()["token"], "notes.png", content, "image/png")

    assert response.status_code == 415
    detail = response.json()["detail"]
    assert "JPEG, PNG, GIF or WebP" in detail
    assert not CLASS_NAME.search(detail), detail


def test_an_advisors_refused_image_is_explained_in_plain_words(demo, api_as):
    from django.core.files.uploadedfile import SimpleUploadedFile

    conversation = escalated()
    response = api_as("alice").post(f"{CONVERSATIONS}/{conversation.pk}/messages", {
        "image": SimpleUploadedFile("notes.png", b"plain text", "image/png"), "client_id": new_id()})

    assert response.status_code == 415
    assert not CLASS_NAME.search(response.json()["detail"]), response.json()

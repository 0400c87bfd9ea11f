"""MSG carries an image's stored width and height, upright, so clients reserve its room before it loads."""
import io

import pytest
from PIL import Image

from conversations.tests.conftest import escalated, new_id, start_session
from conversations.tests.test_api import CONVERSATIONS
from conversations.tests.test_images import jpeg_with_gps, png, upload

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_a_visitors_image_has_its_size_in_the_socket_frame_and_the_lists(demo, api_as):
    session = start_session()
    response = upload(session["token"], "wide.png", png((48, 20)), "image/png")
    assert response.status_code == 201, response.content
    message = response.json()["message"]
    assert (message["width"], message["height"]) == (48, 20)

    listed = api_as("alice").get(f"{CONVERSATIONS}/{message['conversation']}/messages").json()["messages"]
    image = next(m for m in listed if m["kind"] == "image")
    assert (image["width"], image["height"]) == (48, 20)


def test_the_size_is_the_upright_one(demo):
    # a 40x30 photo whose EXIF says "rotate": stored upright as 30x40
    response = upload(start_session()["token"], "trip.jpg", jpeg_with_gps(), "image/jpeg")
    assert response.status_code == 201, response.content
    assert (response.json()["message"]["width"], response.json()["message"]["height"]) == (30, 40)


def test_an_advisors_image_has_its_size_and_a_text_has_none(demo, api_as):
    from django.core.files.uploadedfile import SimpleUploadedFile

    conversation = escalated()
    out = io.BytesIO()
    Image.new("RGB", (16, 64), (1, 2, 3)).save(out, "GIF")
    response = api_as("alice").post(f"{CONVERSATIONS}/{conversation.pk}/messages", {
        "image": SimpleUploadedFile("tall.gif", out.getvalue(), "image/gif"), "client_id": new_id()})
    assert response.status_code == 201, response.content
    assert (response.json()["message"]["width"], response.json()["message"]["height"]) == (16, 64)

    text = api_as("alice").post(f"{CONVERSATIONS}/{conversation.pk}/messages", {"client_id": new_id(), "text": "hi"},
                                format="json").json()["message"]
    assert text["width"] is None and text["height"] is None

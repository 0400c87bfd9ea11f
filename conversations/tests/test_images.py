"""Uploads from both sides: only real images within the limits are stored, re-encoded without metadata."""
import io
import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from conversations.models import Message
from conversations.tests.conftest import ORIGIN, escalated, new_id, start_session
from conversations.tests.test_api import CONVERSATIONS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def png(size=(8, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (40, 30), (10, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90 degrees
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 30.0)}  # GPS
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def png_bomb(side=20000) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\x00" * (1 + (side + 7) // 8)
    z = zlib.compressobj(9)
    data = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def upload(token, name, content, content_type, client_id=None):
    return APIClient().post("/api/widget/images", {"image": SimpleUploadedFile(name, content, content_type),
                                                   "client_id": client_id or new_id()},
                            HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ORIGIN=ORIGIN)


def test_visitor_image_is_stored_reencoded_and_served_with_nosniff(demo, media_root):
    token = start_session()["token"]
    response = upload(token, "photo.png", png(), "image/png")
    assert response.status_code == 201
    message = response.json()["message"]
    assert message["kind"] == "image" and message["sender"] == "visitor"
    assert message["image_url"].startswith("http") and "photo" not in message["image_url"]
    served = APIClient().get(message["image_url"].split("://", 1)[1].split("/", 1)[1].join(["/", ""]))
    assert served.status_code == 200 and served["X-Content-Type-Options"] == "nosniff"
    assert Image.open(io.BytesIO(b"".join(served.streaming_content))).size == (8, 8)


def test_exif_is_stripped_and_orientation_applied(demo, media_root):
    token = start_session()["token"]
    response = upload(token, "trip.jpg", jpeg_with_gps(), "image/jpeg")
    assert response.status_code == 201
    stored = Message.objects.get(pk=response.json()["message"]["id"])
    with Image.open(stored.image.path) as image:
        assert image.size == (30, 40)  # rotated upright
        assert not image.getexif()
        assert "exif" not in image.info
    assert b"SpyCam" not in open(stored.image.path, "rb").read()


@pytest.mark.parametrize("name,content,content_type,status", [
    ("notes.png", b"this is plain text, not an image", "image/png", 415),
    ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image/svg+xml", 415),
    ("bomb.png", png_bomb(), "image/png", 415),
    ("huge.png", b"\x89PNG" + b"\x00" * (10 * 1024 * 1024 + 1), "image/png", 413),
])
def test_refused_uploads_store_nothing(demo, media_root, name, content, content_type, status):
    token = start_session()["token"]
    count = Message.objects.count()
    response = upload(token, name, content, content_type)
    assert response.status_code == status
    assert response.json()["code"] in ("unsupported_media_type", "too_large")
    assert Message.objects.count() == count
    assert not (media_root / "conversations").exists() or not any((media_root / "conversations").iterdir())


def test_a_notes_image_is_served_only_to_advisors_who_may_see_it(demo, api_as, media_root):
    conversation = escalated()
    alice = api_as("alice")
    response = alice.post(f"{CONVERSATIONS}/{conversation.pk}/messages",
                          {"client_id": new_id(), "kind": "note", "image": SimpleUploadedFile("n.png", png(), "image/png")},
                          format="multipart")
    assert response.status_code == 201
    note = response.json()["message"]
    assert note["kind"] == "note" and note["image_url"]
    path = "/" + note["image_url"].split("://", 1)[1].split("/", 1)[1]
    assert alice.get(path).status_code == 200
    assert APIClient().get(path).status_code == 404  # a visitor, or anyone holding the link
    assert api_as("carol").get(path).status_code == 404  # no license, no notes
    widget = APIClient().get("/api/widget/messages", HTTP_AUTHORIZATION="Bearer x")
    assert widget.status_code == 401


def test_advisor_image_reply_reaches_the_timeline(demo, api_as, media_root):
    conversation = escalated()
    response = api_as("bob").post(f"{CONVERSATIONS}/{conversation.pk}/messages",
                                  {"client_id": new_id(), "image": SimpleUploadedFile("a.png", png(), "image/png")},
                                  format="multipart")
    assert response.status_code == 201
    assert response.json()["message"]["kind"] == "image"
    assert response.json()["message"]["advisor"]["name"] == "Bob"

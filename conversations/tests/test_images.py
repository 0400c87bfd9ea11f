"""Uploads from both sides: only real images within the limits are stored, re-encoded without metadata."""
import io
import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw
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
    ("old.bmp", b"BM" + struct.pack("<IHHI", 62, 0, 0, 26) + struct.pack("<IHHHH", 12, 1, 1, 1, 24) + b"\0" * 4,
     "image/bmp", 415),
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
                          {"client_id": new_id(), "kind": "note",
                           "image": SimpleUploadedFile("n.png", png(), "image/png")},
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


# --- Image bombs (issue 12, point 4): the work is bounded before Pillow decodes, and Pillow never answers 500. ---

def gif_of_frames(count: int, *, delay: int = 2, comment: bytes = b"") -> bytes:
    """`count` 1x1 frames written block by block, as an attacker would (Pillow merges identical frames)."""
    single = io.BytesIO()
    Image.new("P", (1, 1), 0).save(single, "GIF")
    frame = single.getvalue()[single.getvalue().index(b"\x2c"):-1]  # image descriptor + LZW data
    head = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    if comment:
        head += b"\x21\xfe" + bytes([len(comment)]) + comment + b"\x00"
    control = b"\x21\xf9\x04\x00" + struct.pack("<H", delay) + b"\x00\x00"
    return head + (control + frame) * count + b"\x3b"


def animation(size=(40, 30), frames=3, **options) -> bytes:
    images = []
    for index in range(frames):  # a bar that moves: no two frames alike, or Pillow would merge them
        image = Image.new("RGB", size, (255, 255, 255))
        ImageDraw.Draw(image).rectangle((index * 4, 0, index * 4 + 3, size[1]), fill=(200, 30, 30))
        images.append(image)
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=80, loop=0, **options)
    return out.getvalue()


def test_gif_frame_count_is_read_from_the_blocks_as_pillow_counts_them():
    from conversations.images import gif_frame_count

    assert gif_frame_count(animation(frames=7), max_frames=500) == 7
    assert gif_frame_count(gif_of_frames(40), max_frames=500) == Image.open(io.BytesIO(gif_of_frames(40))).n_frames


def test_a_gif_of_50000_frames_is_refused_not_a_server_error(demo, media_root):
    # given the file that raised OverflowError (500) and took seconds of decoding
    token = start_session()["token"]
    count = Message.objects.count()
    # when
    response = upload(token, "many.gif", gif_of_frames(50_000), "image/gif")
    # then
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type" and "frames" in response.json()["detail"]
    assert Message.objects.count() == count


def test_an_animation_over_the_decoded_pixel_budget_is_refused(demo, media_root, settings):
    settings.LIVECHAT = {**settings.LIVECHAT, "IMAGE_MAX_ANIMATION_PIXELS": 100 * 100 * 10}
    token = start_session()["token"]
    assert upload(token, "ok.gif", animation((100, 100), frames=10), "image/gif").status_code == 201
    refused = upload(token, "big.gif", animation((100, 100), frames=11), "image/gif")
    assert refused.status_code == 415 and "pixels" in refused.json()["detail"]


def test_an_error_pillow_raises_on_a_hostile_gif_is_a_415(demo, media_root):
    # Two identical frames of the longest delay: Pillow merges them and their summed delay overflowed its encoder.
    token = start_session()["token"]
    response = upload(token, "slow.gif", gif_of_frames(2, delay=0xFFFF), "image/gif")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_an_animation_within_the_limits_stays_animated(demo, media_root):
    token = start_session()["token"]
    response = upload(token, "wave.gif", animation(frames=5), "image/gif")
    assert response.status_code == 201
    with Image.open(Message.objects.get(pk=response.json()["message"]["id"]).image.path) as stored:
        assert stored.n_frames == 5 and stored.info.get("duration") == 80


def test_a_progressive_jpeg_of_too_many_scans_is_refused(demo, media_root):
    # Each scan is decoded over the whole image: thousands of tiny ones are a time bomb in a small file.
    out = io.BytesIO()
    Image.effect_noise((200, 200), 30).convert("RGB").save(out, "JPEG", progressive=True)
    data = out.getvalue()
    starts = [index for index in range(len(data) - 1) if data[index:index + 2] == b"\xff\xda"]
    scans = [data[start:end] for start, end in zip(starts, starts[1:] + [len(data) - 2])]
    bomb = data[:-2] + min(scans, key=len) * 200 + data[-2:]
    token = start_session()["token"]
    assert upload(token, "ok.jpg", data, "image/jpeg").status_code == 201
    refused = upload(token, "scans.jpg", bomb, "image/jpeg")
    assert refused.status_code == 415 and "scans" in refused.json()["detail"]


def test_jpeg_comment_is_stripped(demo, media_root):
    token = start_session()["token"]
    out = io.BytesIO()
    Image.new("RGB", (20, 20), (1, 2, 3)).save(out, "JPEG", comment=b"secret COM segment")
    assert b"secret COM segment" in out.getvalue()
    response = upload(token, "c.jpg", out.getvalue(), "image/jpeg")
    assert response.status_code == 201
    stored = Message.objects.get(pk=response.json()["message"]["id"]).image.path
    assert b"secret COM segment" not in open(stored, "rb").read()
    with Image.open(stored) as image:
        assert "comment" not in image.info


@pytest.mark.parametrize("frames", [1, 3])
def test_gif_comment_is_stripped(demo, media_root, frames):
    token = start_session()["token"]
    content = animation(frames=frames, comment=b"secret GIF comment")
    assert b"secret GIF comment" in content
    response = upload(token, "c.gif", content, "image/gif")
    assert response.status_code == 201
    stored = Message.objects.get(pk=response.json()["message"]["id"]).image.path
    assert b"secret GIF comment" not in open(stored, "rb").read()

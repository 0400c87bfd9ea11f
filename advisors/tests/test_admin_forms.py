"""Admin input is validated: avatars are real images re-encoded, origins are origins."""
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from advisors.forms import OriginsField, avatar_clean, origin_clean


def test_origins_are_scheme_host_and_optional_port_only():
    assert origin_clean("https://Shop.example.com") == "https://shop.example.com"
    assert origin_clean("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    for bad in ["shop.example.com", "ftp://x.example", "https://x.example/path", "https://x.example?q=1",
                "https://user:pw@x.example", "https://x.example:99999"]:
        with pytest.raises(ValidationError):
            origin_clean(bad)
    assert OriginsField().clean("https://a.example\nhttps://a.example\nhttp://b.example:81") == [
        "https://a.example", "http://b.example:81"]


def test_avatar_is_reencoded_square_without_metadata():
    image = Image.new("RGB", (600, 300), (1, 2, 3))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"
    raw = io.BytesIO()
    image.save(raw, "JPEG", exif=exif)
    cleaned = avatar_clean(SimpleUploadedFile("me.jpg", raw.getvalue(), "image/jpeg"))
    data = cleaned.read()
    assert b"SpyCam" not in data
    assert Image.open(io.BytesIO(data)).size == (256, 256)
    assert cleaned.name.endswith(".png") and "me" not in cleaned.name


def test_a_file_that_is_not_an_image_is_refused_as_avatar():
    with pytest.raises(ValidationError):
        avatar_clean(SimpleUploadedFile("me.png", b"<svg onload=alert(1)>", "image/png"))


@pytest.mark.django_db
def test_site_admin_refuses_a_bad_origin(demo, client):
    client.force_login(demo.advisors["admin"].user)
    shop = demo.sites["shop"]
    response = client.post(f"/admin/advisors/site/{shop.pk}/change/", {
        "account": shop.account_id, "name": "Shop", "key": "demo-shop", "color": "#2563eb",
        "allowed_origins": "https://ok.example\nnot an origin", "chatbot": shop.chatbot_id})
    assert response.status_code == 200 and "is not an origin" in response.content.decode()
    shop.refresh_from_db()
    assert "https://ok.example" not in shop.allowed_origins

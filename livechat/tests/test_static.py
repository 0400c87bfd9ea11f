"""Static files answered by the ASGI application before Django (livechat/static.py), with whitenoise's headers."""
import gzip
from pathlib import Path

import pytest
from channels.testing import HttpCommunicator
from django.core.signals import request_started

from livechat.asgi import application
from livechat.static import StaticFiles

MAIN_JS = Path(__file__).resolve().parents[2] / "static" / "inbox" / "js" / "main.js"


async def get(app, path: str, method: str = "GET", headers: list[tuple[bytes, bytes]] = ()) -> dict:
    response = await HttpCommunicator(app, method, path, headers=list(headers)).get_response(timeout=10)
    response["headers"] = {name.decode().lower(): value.decode() for name, value in response["headers"]}
    return response


@pytest.fixture
def django_requests():
    """The requests that reached Django's handler."""
    seen = []

    def count(sender, **kwargs):
        seen.append(kwargs.get("scope", {}).get("path"))

    request_started.connect(count)
    yield seen
    request_started.disconnect(count)


async def test_a_static_file_is_served_without_entering_django(django_requests):
    response = await get(application, "/static/inbox/js/main.js")

    assert response["status"] == 200
    assert response["body"] == MAIN_JS.read_bytes()
    assert response["headers"]["content-type"].startswith("text/javascript")
    assert "max-age" in response["headers"]["cache-control"]
    assert response["headers"]["etag"]
    assert response["headers"]["x-content-type-options"] == "nosniff"  # as SecurityMiddleware added it
    assert django_requests == []


async def test_a_static_file_answers_304_to_its_etag():
    etag = (await get(application, "/static/inbox/js/main.js"))["headers"]["etag"]

    response = await get(application, "/static/inbox/js/main.js", headers=[(b"if-none-match", etag.encode())])

    assert response["status"] == 304 and response["body"] == b""


async def test_static_files_take_only_get_and_head():
    head = await get(application, "/static/inbox/js/main.js", method="HEAD")
    assert head["status"] == 200 and head["body"] == b""
    assert head["headers"]["content-length"] == str(MAIN_JS.stat().st_size)

    post = await get(application, "/static/inbox/js/main.js", method="POST")
    assert post["status"] == 405 and post["headers"]["allow"] == "GET, HEAD"


@pytest.mark.django_db
async def test_a_path_naming_no_static_file_is_djangos_404(django_requests):
    response = await get(application, "/static/inbox/nothing-here.js", headers=[(b"host", b"localhost")])

    assert response["status"] == 404
    assert django_requests == ["/static/inbox/nothing-here.js"]


@pytest.fixture
def static_dir(tmp_path, settings):
    """A static directory of this test's own, found through the finders as the repo's are."""
    settings.STATICFILES_DIRS = [tmp_path]
    return tmp_path


async def test_a_precompressed_variant_is_served_to_clients_that_accept_it(static_dir):
    (static_dir / "app.js").write_text("let x = 1;\n" * 1000)
    (static_dir / "app.js.gz").write_bytes(gzip.compress((static_dir / "app.js").read_bytes()))
    app = StaticFiles(application)

    zipped = await get(app, "/static/app.js", headers=[(b"accept-encoding", b"gzip, br")])
    plain = await get(app, "/static/app.js")

    assert zipped["headers"]["content-encoding"] == "gzip" and zipped["headers"]["vary"] == "Accept-Encoding"
    assert gzip.decompress(zipped["body"]) == plain["body"] == (static_dir / "app.js").read_bytes()


async def test_a_large_static_file_is_sent_whole_and_by_ranges(static_dir):
    data = bytes(range(256)) * 4096  # 1 MB: read in a thread, by chunks
    (static_dir / "big.bin").write_bytes(data)
    app = StaticFiles(application)

    whole = await get(app, "/static/big.bin")
    part = await get(app, "/static/big.bin", headers=[(b"range", b"bytes=100-199")])

    assert whole["status"] == 200 and whole["body"] == data
    assert part["status"] == 206 and part["body"] == data[100:200]


async def test_under_autorefresh_a_file_added_later_is_served(static_dir, settings):
    settings.WHITENOISE_AUTOREFRESH = True
    app = StaticFiles(application)
    (static_dir / "late.css").write_text("body { color: red }")

    response = await get(app, "/static/late.css")

    assert response["status"] == 200 and response["body"] == b"body { color: red }"

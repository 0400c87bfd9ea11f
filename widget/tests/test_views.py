"""The loader, its budgets and the demo page, through the Django test client."""
import gzip
import hashlib
import re

import pytest

from widget import views

LOADER_BUDGET = 3 * 1024  # gzipped bytes (issue 6, point 1)
TOTAL_BUDGET = 20 * 1024  # everything the widget ever loads, gzipped
SNIPPET = '<script src="/widget.js" data-site="demo-shop" async></script>'
WIDGET_FILES = sorted(p for p in views.STATIC_DIR.rglob("*") if p.is_file())


def gz(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=6))  # the usual server level; 9 would only be smaller


def test_widget_js_is_served_as_javascript_with_short_revalidated_caching(client):
    response = client.get("/widget.js")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "max-age=300" in response["Cache-Control"] and "public" in response["Cache-Control"]
    assert response["ETag"]
    assert not response.cookies


def test_widget_js_answers_304_to_its_etag_gzipped_or_not(client):
    etag = client.get("/widget.js")["ETag"]
    weak = client.get("/widget.js", HTTP_ACCEPT_ENCODING="gzip")["ETag"]

    assert client.get("/widget.js", HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert client.get("/widget.js", HTTP_IF_NONE_MATCH=weak, HTTP_ACCEPT_ENCODING="gzip").status_code == 304
    assert client.get("/widget.js", HTTP_IF_NONE_MATCH='"something-else"').status_code == 200


def test_widget_js_is_gzipped_for_clients_that_accept_it(client):
    response = client.get("/widget.js", HTTP_ACCEPT_ENCODING="gzip")

    assert response["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.content) == client.get("/widget.js").content


def test_widget_js_takes_only_get_and_head(client):
    assert client.head("/widget.js").status_code == 200
    assert client.post("/widget.js").status_code == 405


def test_loader_fits_its_3kb_gzipped_budget(client):
    body = client.get("/widget.js").content

    assert gz(body) <= LOADER_BUDGET, f"the loader is {gz(body)} bytes gzipped, over {LOADER_BUDGET}"


def test_everything_the_widget_loads_fits_20kb_gzipped(client):
    # given: the loader as served, plus every file under widget/static/widget/ (a superset of what it loads)
    loader = client.get("/widget.js").content
    assets = {p.name: p.read_bytes() for p in WIDGET_FILES if p != views.LOADER_FILE}

    # when
    sizes = {"/widget.js": gz(loader), **{name: gz(data) for name, data in assets.items()}}

    # then
    assert "panel.js" in assets
    assert sum(sizes.values()) <= TOTAL_BUDGET, f"the widget loads {sum(sizes.values())} bytes gzipped: {sizes}"


def test_loader_points_at_the_panel_versioned_by_its_content(client):
    body = client.get("/widget.js").content.decode()
    version = hashlib.sha256(views.PANEL_FILE.read_bytes()).hexdigest()[:12]

    assert f'base + "/widget.js?panel={version}"' in body
    assert "__PANEL_VERSION__" not in body


def test_the_panel_the_loader_names_is_served_gzipped_and_immutable(client):
    body = client.get("/widget.js").content.decode()
    url = re.search(r'base \+ "(/widget\.js\?panel=[0-9a-f]{12})"', body).group(1)

    response = client.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate, br")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.content) == views.PANEL_FILE.read_bytes()
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert client.get(url, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


def test_a_stale_panel_version_gets_todays_panel_briefly_cached(client):
    response = client.get("/widget.js?panel=000000000000")

    assert response.status_code == 200
    assert response.content == views.PANEL_FILE.read_bytes()
    assert "immutable" not in response["Cache-Control"] and "max-age=300" in response["Cache-Control"]


@pytest.mark.parametrize("path", WIDGET_FILES, ids=lambda p: p.name)
def test_widget_code_never_builds_html_from_strings_nor_uses_cookies(path):
    source = path.read_text(encoding="utf-8")

    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                      "document.cookie", 'addEventListener("message"', "addEventListener('message'"):
        assert forbidden not in source, f"{path.name} uses {forbidden}"


def test_widget_code_defines_one_global_at_most():
    loader = views.LOADER_FILE.read_text(encoding="utf-8")
    panel = views.PANEL_FILE.read_text(encoding="utf-8")

    assigned = set(re.findall(r"\bw\.([A-Za-z_$][\w$]*)\s*=(?!=)", loader + panel))
    assigned |= set(re.findall(r"\bwindow\.([A-Za-z_$][\w$]*)\s*=(?!=)", loader + panel))
    assert assigned == {"LivechatWidget"}
    assert loader.lstrip().startswith("/*") and "(function (w, d) {" in loader and "(function (w, d) {" in panel


def test_token_goes_in_the_auth_frame_never_in_the_socket_url():
    panel = views.PANEL_FILE.read_text(encoding="utf-8")
    socket_url = re.search(r"new w\.WebSocket\((.*)\);", panel).group(1)

    assert "token" not in socket_url
    assert 'type: "auth", token: st.token, after: st.lastSeq' in panel


def test_demo_page_embeds_the_snippet_for_demo_shop(client):
    response = client.get("/demo/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert SNIPPET in response.content.decode()


@pytest.mark.parametrize("query", ["?page=product&product=lamp", "?page=cart", "?page=nonsense", "?page=product"])
def test_every_demo_page_embeds_the_snippet(client, query):
    response = client.get("/demo/" + query)

    assert response.status_code == 200
    assert SNIPPET in response.content.decode()


def test_demo_page_escapes_what_it_echoes(client):
    response = client.get("/demo/?page=<script>alert(1)</script>&product=<img src=x onerror=alert(1)>")

    assert response.status_code == 200
    assert "<img src=x" not in response.content.decode() and "<script>alert" not in response.content.decode()


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_demo_page_passes_its_lang_to_the_embed_and_keeps_it_in_its_links(client, lang):
    response = client.get(f"/demo/?lang={lang}")
    html = response.content.decode()

    assert response.status_code == 200
    assert f'<script src="/widget.js" data-site="demo-shop" data-lang="{lang}" async></script>' in html
    assert f'href="?page=cart&amp;lang={lang}"' in html


@pytest.mark.parametrize("lang", ["<script>alert(1)</script>", "de", "FR", "fr-FR", "fr\" onload=\"x", ""])
def test_demo_page_ignores_any_other_lang(client, lang):
    response = client.get("/demo/", {"lang": lang, "page": "cart"})
    html = response.content.decode()

    assert response.status_code == 200
    assert SNIPPET in html
    assert "data-lang" not in html and "lang=" not in html.replace('<html lang="en">', "")
    assert "<script>alert" not in html and "onload" not in html

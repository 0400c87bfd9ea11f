"""The widget's code (`/widget.js`) and the customer-like demo page (`/demo/`).

`/widget.js` is the loader customers embed: the static file `widget/static/widget/widget.js`, served here with a
short cache since its URL never changes. The view writes the panel's content hash into it, and the loader then
fetches the panel from `/widget.js?panel=<hash>`: the same view serves `panel.js` there, gzipped and cacheable for
a year (a new panel has a new hash). Whitenoise also exposes both files under /static/widget/, but in finders
mode it neither compresses them nor caches them for long, and every visitor of every customer pays for these
bytes.
"""
import hashlib
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotModified
from django.shortcuts import render
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_safe

STATIC_DIR = Path(__file__).resolve().parent / "static" / "widget"
LOADER_FILE = STATIC_DIR / "widget.js"
PANEL_FILE = STATIC_DIR / "panel.js"
VERSION_PLACEHOLDER = "__PANEL_VERSION__"
# Customers embed the unversioned URL: a few minutes of cache, then revalidation with the ETag.
LOADER_CACHE_CONTROL = "public, max-age=300, stale-while-revalidate=3600"
PANEL_CACHE_CONTROL = "public, max-age=31536000, immutable"


@lru_cache(maxsize=1)
def _code() -> dict[str, tuple[bytes, str]]:
    panel = PANEL_FILE.read_bytes()
    version = hashlib.sha256(panel).hexdigest()[:12]
    loader = LOADER_FILE.read_text(encoding="utf-8").replace(VERSION_PLACEHOLDER, version).encode()
    return {
        "loader": (loader, '"%s"' % hashlib.sha256(loader).hexdigest()[:20]),
        "panel": (panel, f'"{version}"'),
    }


def code(part: str) -> tuple[bytes, str]:
    """The bytes and strong ETag of the loader or the panel (read once; on every request under DEBUG)."""
    if settings.DEBUG:
        _code.cache_clear()
    return _code()[part]


def panel_version() -> str:
    return code("panel")[1].strip('"')


def _etag_matches(request, etag: str) -> bool:
    wanted = request.headers.get("If-None-Match", "")
    # gzip_page turns the ETag weak (W/"…") on compressed responses: compare the opaque part either way.
    candidates = {tag.strip().removeprefix("W/") for tag in wanted.split(",")}
    return etag in candidates or "*" in candidates


@require_safe
@gzip_page
def widget_js(request):
    wanted = request.GET.get("panel")
    body, etag = code("loader" if wanted is None else "panel")
    if wanted is None:
        cache_control = LOADER_CACHE_CONTROL
    else:
        # A loader cached from before a deploy asks for the old hash: it gets today's panel, briefly cached.
        cache_control = PANEL_CACHE_CONTROL if wanted == panel_version() else LOADER_CACHE_CONTROL
    if _etag_matches(request, etag):
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["ETag"] = etag
    response["Cache-Control"] = cache_control
    response["X-Content-Type-Options"] = "nosniff"
    # Loaded by <script> from any customer origin; never with credentials.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    response["Access-Control-Allow-Origin"] = "*"
    return response


DEMO_PRODUCTS = [
    {"slug": "mug", "name": "Enamel camp mug", "price": "18.00", "color": "#f97316",
     "text": "Chip-resistant enamel, 350 ml, for coffee at the summit or at your desk."},
    {"slug": "lamp", "name": "Folding desk lamp", "price": "64.00", "color": "#0ea5e9",
     "text": "Three light temperatures, USB-C, folds flat into a drawer."},
    {"slug": "backpack", "name": "City backpack 22 L", "price": "119.00", "color": "#16a34a",
     "text": "Waterproof roll-top, padded laptop sleeve, lifetime repairs."},
    {"slug": "notebook", "name": "Dot-grid notebook", "price": "12.50", "color": "#a855f7",
     "text": "A5, 160 pages of 100 g paper that takes fountain pens."},
]

DEMO_LANGUAGES = ("en", "fr")  # the widget's (panel.js WORDS)


@require_safe
def demo(request):
    """A customer's shop with the embed snippet: home, a product page and a cart, to navigate between."""
    page = request.GET.get("page", "home")
    product = next((p for p in DEMO_PRODUCTS if p["slug"] == request.GET.get("product")), None)
    if page == "product" and product is None:
        product = DEMO_PRODUCTS[0]
    if page not in ("home", "product", "cart"):
        page = "home"
    # ?lang=fr shows the French widget (the embed's data-lang); only a language the widget speaks gets through.
    lang = request.GET.get("lang")
    lang = lang if lang in DEMO_LANGUAGES else ""
    return render(request, "widget/demo.html", {"page": page, "product": product, "products": DEMO_PRODUCTS,
                                                "site_key": "demo-shop", "lang": lang,
                                                "lang_q": f"&lang={lang}" if lang else ""})

"""Browser tests: the product served by uvicorn (tests/faults/servers.py web_command) in a subprocess, on its own
database, seeded with the demo.

With DATABASE_URL (PostgreSQL) and REDIS_URL set, the server uses a fresh PostgreSQL database and Redis;
otherwise a temporary SQLite file and the in-memory layer. Chromium is Debian's, driven by Playwright.
"""
import functools
import http.server
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.faults.servers import WEB_SERVER, web_command

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic", "--autoplay-policy=no-user-gesture-required"]
SCREENSHOTS = ROOT / "var" / "screenshots"

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    base: str
    ws: str
    env: dict
    process: subprocess.Popen
    page_origin: str
    page_root: Path
    log: Path
    extra: dict = field(default_factory=dict)

    def manage(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                             text=True, timeout=120, check=True)
        return out.stdout


def _create_postgres_database(url: str) -> tuple[str, str]:
    import psycopg

    name = f"e2e_{secrets.token_hex(4)}"
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, url.rsplit("/", 1)[0] + "/" + name


def _drop_postgres_database(url: str, name: str) -> None:
    import psycopg

    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def customer_pages():
    """A second origin serving plain HTML files (the customer's site); tests write pages into its root."""
    root = Path(tempfile.mkdtemp(prefix="e2e-pages-"))
    port = free_port()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}", root
    httpd.shutdown()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def live_server(customer_pages, tmp_path_factory):
    page_origin, page_root = customer_pages
    port = free_port()
    workdir = tmp_path_factory.mktemp("server")
    env = dict(os.environ)
    env.update(HOST="127.0.0.1", PORT=str(port), DEMO_EXTRA_ORIGINS=page_origin, MEDIA_ROOT=str(workdir / "media"),
               EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend", CELERY_TASK_ALWAYS_EAGER="1",
               CHANNEL_LAYER_PREFIX=f"e2e-{secrets.token_hex(4)}", PYTHONUNBUFFERED="1")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    database = None
    if env.get("DATABASE_URL", "").startswith("postgres"):
        database, env["DATABASE_URL"] = _create_postgres_database(env["DATABASE_URL"])
    else:
        env["DATABASE_URL"] = f"sqlite:///{workdir / 'db.sqlite3'}"
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run([sys.executable, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True, capture_output=True)
    log = workdir / "daphne.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(web_command(WEB_SERVER, port), cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{WEB_SERVER} did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    server = LiveServer(base=base, ws=f"ws://127.0.0.1:{port}", env=env, process=process,
                        page_origin=page_origin, page_root=page_root, log=log)
    yield server
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
    if database:
        _drop_postgres_database(env["DATABASE_URL"], database)


@pytest.fixture(autouse=True)
def _live_server_helper():
    """Overrides pytest-django's autouse fixture of that name, which any test naming a `live_server` fixture
    triggers: it would build a Django test database inside Playwright's running event loop, which Django
    refuses. The server above has its own database; these tests need no other."""
    yield


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    yield context
    context.close()


@pytest.fixture
def page(context):
    return context.new_page()


def screenshot(page, name: str) -> Path:
    """Save a screenshot under var/screenshots/ (not committed) and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path

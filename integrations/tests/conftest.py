"""A real HTTP receiver on loopback, and a real Celery worker for the webhook tests."""
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST (headers and raw body) and answers with the next status
    of `statuses` (then 200), or always `status` if set."""

    def __init__(self, statuses: list[int] | None = None, status: int | None = None, delay_s: float = 0.0):
        self.statuses = list(statuses or [])
        self.status = status
        self.delay_s = delay_s
        self.received: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    status = receiver.status or (receiver.statuses.pop(0) if receiver.statuses else 200)
                    receiver.received.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                              "status": status})
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                answer = b'{"ok": true}' if status < 300 else b"receiver says no"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/livechat?src=test"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def bodies(self, ok_only: bool = True) -> list[dict]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.received if not ok_only or r["status"] < 300]

    def wait_for(self, predicate, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                received = list(self.received)
            if predicate(received):
                return received
            time.sleep(0.1)
        raise AssertionError(f"the receiver did not get what was expected within {timeout}s: {received}")


@pytest.fixture(scope="module")
def webhook_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """A `celery worker` process on the Redis broker and this run's test database, on a queue of its own, with
    private addresses allowed (the receiver is on loopback) and a short retry window: first retry after 0.5 s,
    given up 4 s after the event."""
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip("a real worker needs the shared PostgreSQL database and Redis (CI sets DATABASE_URL and REDIS_URL)")
    queue = f"test-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="livechat.settings", CELERY_TASK_ALWAYS_EAGER="0",
               DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
               CELERY_TASK_DEFAULT_QUEUE=queue, WEBHOOK_ALLOW_PRIVATE="1", WEBHOOK_RETRY_FIRST_S="0.5",
               WEBHOOK_RETRY_WINDOW_S="4", WEBHOOK_TIMEOUT_S="2")
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "livechat", "worker", "-Q", queue,
                                   "--concurrency", "2", "-l", "info"],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120  # a loaded machine boots Django and Celery slowly
    while b"ready." not in log.read_bytes():
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise RuntimeError(f"the celery worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    try:
        yield queue, log
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()


@pytest.fixture
def on_worker(webhook_worker, settings):
    """This test's tasks go to the worker (not run eagerly), with the worker's webhook settings."""
    from livechat.celery import app

    queue, log = webhook_worker
    previous = (app.conf.task_always_eager, app.conf.task_default_queue)
    app.conf.task_always_eager, app.conf.task_default_queue = False, queue
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.WEBHOOK_ALLOW_PRIVATE = True
    settings.WEBHOOK_RETRY_WINDOW_S, settings.WEBHOOK_RETRY_FIRST_S = 4.0, 0.5
    try:
        yield log
    finally:
        app.conf.task_always_eager, app.conf.task_default_queue = previous


def make_webhook(demo, url: str, events=None, include_notes: bool = False, secret: str = "s3cret"):
    from integrations.models import EVENTS, Webhook

    return Webhook.objects.create(account=demo.sites["shop"].account, url=url, secret=secret,
                                  events=list(events or EVENTS), include_notes=include_notes)

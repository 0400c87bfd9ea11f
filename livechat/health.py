"""GET /healthz: a real round trip to the database and to the channel layer. And the layer watch, which tells
this process's sockets when the layer comes back after failing: whatever it carried meanwhile is lost (the layer
is at-most-once), so their clients must catch up by `seq`."""
import asyncio
import logging
import uuid
import weakref

from asgiref.sync import sync_to_async
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

logger = logging.getLogger(__name__)

CHANNEL_LAYER_TIMEOUT_S = 2.0
WATCH_INTERVAL_S = 1.0
WATCH_TIMEOUT_S = 5.0  # generous: a loaded process must not take its own slowness for an outage


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


class _Probe:
    """One channel per event loop on which the process sends itself a message: a real round trip through the layer
    (with Redis: a publish, and the subscriber connection that must hear it). The channel is reused: a new one per
    probe would stay subscribed, since channels_redis forgets a channel only when a receive on it is cancelled."""

    def __init__(self):
        self.layer = None
        self.channel = None
        self.lock = asyncio.Lock()

    async def round_trip(self, timeout: float) -> None:
        # The wait for the lock counts in the timeout: a probe stuck behind another one (a receive whose
        # cancellation hangs on a Redis that is down) is a failed probe, never a watch that stops watching.
        async with asyncio.timeout(timeout):
            await self.lock.acquire()
        try:
            layer = get_channel_layer()
            if layer is not self.layer:
                self.layer, self.channel = layer, None
            try:
                async with asyncio.timeout(timeout):
                    if self.channel is None:  # the default prefix: the core layer reads it with the sockets'
                        self.channel = await layer.new_channel()
                    probe = uuid.uuid4().hex
                    await layer.send(self.channel, {"type": "healthz.probe", "probe": probe})
                    while (await layer.receive(self.channel)).get("probe") != probe:
                        pass  # the late answer to a probe that timed out
            except (TimeoutError, asyncio.CancelledError):
                self.channel = None  # the cancelled receive unsubscribed it
                raise
        finally:
            self.lock.release()


_probes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Probe]" = weakref.WeakKeyDictionary()


def _probe() -> _Probe:
    loop = asyncio.get_running_loop()
    if loop not in _probes:
        _probes[loop] = _Probe()
    return _probes[loop]


async def _check_channel_layer() -> None:
    await _probe().round_trip(CHANNEL_LAYER_TIMEOUT_S)


async def healthz(request):
    checks = {"database": sync_to_async(_check_database), "channel_layer": _check_channel_layer}
    body = {"status": "ok"}
    errors = []
    for name, check in checks.items():
        try:
            await check()
            body[name] = "ok"
        except Exception as error:  # any failure of the part is the answer, named in the body
            body[name] = "unavailable"
            # The answer is public: it names the part, never its host, port or error text (they map the inside
            # for whoever asks). The operator finds the detail in the log.
            errors.append(f"{name}: unavailable")
            logger.warning("healthz: %s unavailable: %s: %s", name, type(error).__name__, error)
    if errors:
        body["status"] = "unavailable"
        body["error"] = "; ".join(errors)
        return JsonResponse(body, status=503)
    return JsonResponse(body)


# ------------------------------------------------------------------------------ the layer watch


def _layer_redis_url() -> str | None:
    """The Redis behind a channels_redis layer (its first host), or None for another layer."""
    hosts = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("hosts") or [None]
    host = hosts[0]
    return host if isinstance(host, str) else (host or {}).get("address")


class LayerWatch:
    """While sockets are open, probe the layer every second. When it answers again after failing, or its Redis is
    another run than before (restarted between two probes: its subscribers reconnected silently, deaf meanwhile),
    call `layer_recovered()` on every socket watched: they close, and their clients reconnect and catch up by
    `seq`. Sockets are held weakly; the watch stops with the last one."""

    def __init__(self):
        self.sockets: weakref.WeakSet = weakref.WeakSet()
        self.task: asyncio.Task | None = None
        self.failing = False
        self.run_id: str | None = None

    def add(self, socket) -> None:
        self.sockets.add(socket)
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run())

    def discard(self, socket) -> None:
        self.sockets.discard(socket)
        if not self.sockets and self.task is not None:
            self.task.cancel()
            self.task = None

    async def _run(self) -> None:
        url = _layer_redis_url()
        # One attempt per question, bounded: redis-py's default retries with backoff would let one check of a Redis
        # that is down last longer than the outage the watch is there to notice.
        redis = aioredis.Redis.from_url(url, socket_timeout=WATCH_TIMEOUT_S, socket_connect_timeout=WATCH_TIMEOUT_S,
                                        retry=Retry(NoBackoff(), 0)) if url else None
        try:
            # The first look at once, before sleeping: it records which run of Redis the sockets subscribed on, so
            # a restart within the first interval is still one (a first look after it took the new run for the old).
            while self.sockets:
                try:
                    async with asyncio.timeout(4 * WATCH_TIMEOUT_S):  # a hung check is a failed one
                        await self._check(redis)
                except TimeoutError:
                    self._failed("its check did not finish")
                except asyncio.CancelledError:
                    # Only the watch's own end may stop it. A receive the layer cancelled under the probe (its reader
                    # task died with Redis: channels_redis cancels the receives waiting on it) is a failed check;
                    # letting it out would end this task silently, and no outage would ever be noticed again.
                    if asyncio.current_task().cancelling():
                        raise
                    self._failed("the layer cancelled its probe")
                await asyncio.sleep(WATCH_INTERVAL_S)
        finally:
            if redis is not None:
                await redis.aclose()

    def _failed(self, why: str) -> None:
        if not self.failing:
            logger.warning("channel layer unavailable: %s", why)
        self.failing = True

    async def _check(self, redis) -> None:
        try:
            try:
                await _probe().round_trip(WATCH_TIMEOUT_S)
            except (TimeoutError, ChannelFull):
                # Slow is not down: a process saturated by a burst answers its own probe late, and closing every
                # socket then (each client reconnecting at once) would make a busy process a collapsing one. The
                # layer failed only if its Redis does not answer either (asked on a connection of its own). Full is
                # the same on channels_redis's core layer: every channel of a process shares one list in Redis, and
                # a process behind on reading it has its probe refused (1,020 sockets closed 4503 by a burst of
                # arrivals, `make bench`, uvicorn-corex1).
                if redis is None:
                    logger.info("channel layer probe slow (a busy process); nothing was lost in memory")
                    return
                await redis.ping()
                logger.info("channel layer probe slow, Redis answers: a busy process, not an outage")
            run_id = (await redis.info("server"))["run_id"] if redis is not None else None
        except Exception as error:  # the layer or its Redis failing is what this watch is for
            self._failed(f"{type(error).__name__}: {error}")
            return
        restarted = None not in (self.run_id, run_id) and run_id != self.run_id
        self.run_id = run_id
        if self.failing or restarted:
            logger.warning("channel layer back after an outage: %d sockets told to catch up", len(self.sockets))
            self.failing = False
            for socket in list(self.sockets):
                await socket.layer_recovered()


_watches: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LayerWatch]" = weakref.WeakKeyDictionary()


def layer_watch() -> LayerWatch:
    loop = asyncio.get_running_loop()
    if loop not in _watches:
        _watches[loop] = LayerWatch()
    return _watches[loop]

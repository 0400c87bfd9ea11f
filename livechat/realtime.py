"""Group names and the one way to broadcast: every group name is formatted here and nowhere else.

The channel layer only signals; the database is the source of truth and clients catch up by `seq`.
Broadcasts leave after commit, so a frame never announces an item a reader cannot load yet.

Services run in threads of the ASGI server (sync_to_async / database_sync_to_async). A broadcast from such a
thread is handed to the server's event loop and the thread goes on at once: it holds a database connection,
and waiting for Redis there once per group cost a visitor message about 40% of its thread's time. The loop
sends what it is handed in order, per group, so a frame for `seq` 6 never overtakes `seq` 5 on one group.
Without a running loop (a Celery worker, a management command, a plain test) the send blocks as before.

Inbox groups are sequenced: every event to a `site.*` or `advisor.*` group carries `sent_by` (one sender: an event
loop of one process), `group` and `n`, which counts that sender's events to that group 1, 2, 3, ... including the
ones that never reached the layer (dropped here, or failed). The layers drop silently (the in-memory and core Redis
layers skip a channel whose queue is full; Channels' layer spec is at-most-once), so a socket that sees `n` jump
knows it missed something and catches up (CONTRACT section 5). A burst's last events could be dropped with nothing
after them to show the jump: a group that went quiet gets a `layer.tick` carrying the last `n` (TICK_DELAYS_S).
"""
import asyncio
import collections
import logging
import os
import threading
import uuid
import weakref
from typing import Any

from asgiref.sync import AsyncToSync, SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

# Events handed to one loop and not yet through the layer. Past this the loop, or the layer under it, is stuck:
# newer events are dropped (and logged) rather than held without bound; clients catch up by `seq` meanwhile.
BACKLOG_MAX = 10_000
# How long a sequenced group stays quiet before its sender tells it the last `n` it sent (see the module doc), and
# the repeats of that tick for a socket whose queue was still full the first time.
TICK_DELAYS_S = (1.0, 4.0, 15.0)
SEQUENCED_PREFIXES = ("site.", "advisor.")
# Events waiting for one group leave together, as one layer message of this type, when more than one waits: a
# group's events go one publish after the other (their order), so under a burst a group got one publish per turn
# of a busy loop, whatever the layer could take, and every socket of the group woke once per event. Receivers
# unpack it (conversations.consumers.JsonSocket.realtime_batch) and handle each event in order, as if alone.
BATCH_TYPE = "realtime.batch"
BATCH_MAX = 200


def unbatched(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The events a layer message carries: itself, or those of a batch, in order."""
    return message["events"] if message.get("type") == BATCH_TYPE else [message]


def conversation_group(conversation_id: int) -> str:
    """Everything the visitor's widget sockets of one conversation may see."""
    return f"conversation.{conversation_id}"


def site_inbox_group(site_id: int, audience: str) -> str:
    """Inbox sockets of one site, split by what their advisors may see (see conversations.audiences)."""
    return f"site.{site_id}.inbox.{audience}"


def site_everyone_group(site_id: int) -> str:
    """Every inbox socket of one site, whatever its audience: for what all of them may see alike (an item the
    visitor sees, in a conversation no audience is kept from), sent once rather than once per audience."""
    return f"site.{site_id}.inbox"


def advisor_group(advisor_id: int) -> str:
    """Every inbox socket of one advisor (license or scope changes, logout)."""
    return f"advisor.{advisor_id}"


def visitor_group(visitor_id: int) -> str:
    """Every widget socket of one visitor token (socket cap, rate limit)."""
    return f"visitor.{visitor_id}"


def sequenced(group: str) -> bool:
    return group.startswith(SEQUENCED_PREFIXES)


class _Numbering:
    """One sender's `n` per sequenced group. Callers hold their own lock."""

    def __init__(self) -> None:
        self.sent_by = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.last: dict[str, int] = {}

    def stamp(self, group: str, event: dict[str, Any]) -> dict[str, Any]:
        if not sequenced(group):
            return event
        n = self.last[group] = self.last.get(group, 0) + 1
        return {**event, "sent_by": self.sent_by, "group": group, "n": n}


_blocking_numbering: dict[int, _Numbering] = {}  # by process id: a forked worker numbers its own sends
_blocking_lock = threading.Lock()


def send_now(group: str, event: dict[str, Any]) -> None:
    """Send one event to a group; a layer failure is logged, never raised: clients recover by `seq`.

    Under a running event loop (this thread's own, or the one that runs this thread through sync_to_async) the
    event is queued on that loop and this returns without waiting for the layer; otherwise it waits."""
    loop = _serving_loop()
    if loop is None:
        with _blocking_lock:
            numbering = _blocking_numbering.setdefault(os.getpid(), _Numbering())
            event = numbering.stamp(group, event)
        _send_blocking(group, event)
    else:
        _sender_for(loop).hand_over(loop, group, event)


def send_on_commit(group: str, event: dict[str, Any]) -> None:
    """Send once the caller's transaction commits, or now outside one. On the event loop's own thread no transaction
    is ever open (Django refuses database calls there; what the loop writes itself, livechat.loop_io, commits
    statement by statement), so it is sent now."""
    if _running_loop() is not None:
        send_now(group, event)
    else:
        transaction.on_commit(lambda: send_now(group, event))


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def layer_here(layer=None):
    """The channel layer (`layer`, or the default one) to call on the running loop: the loop's own layer where the
    layer keeps one per loop (livechat.layers), without the proxy's coroutine per call."""
    layer = get_channel_layer() if layer is None else layer
    on_this_loop = getattr(layer, "on_this_loop", None)
    return layer if on_this_loop is None else on_this_loop()


def _send_blocking(group: str, event: dict[str, Any]) -> None:
    try:
        async_to_sync(get_channel_layer().group_send)(group, event)
    except Exception:  # the layer is at-most-once by design; the stored item is what counts
        logger.exception("broadcast to %s failed", group)


def _serving_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop this thread works for, if a broadcast may be left to it.

    asgiref's SyncToAsync records the calling loop in a thread-local of whichever executor thread it uses
    (thread-sensitive or not), which is how AsyncToSync finds it too. A loop that async_to_sync started for a
    single call is not one: it ends with that call and cancels whatever is left on it."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    local = SyncToAsync.threadlocal
    loop = getattr(local, "main_event_loop", None)
    if loop is None or getattr(local, "main_event_loop_pid", None) != os.getpid():  # a fork inherits a stale one
        return None
    if loop.is_closed() or not loop.is_running() or loop in AsyncToSync.loop_thread_executors:
        return None
    return loop


class _LoopSender:
    """The broadcasts of one event loop. Any thread hands events over; the loop sends them, one task per group
    with events waiting, each sending its group's events one after the other in the order they were handed over.
    Groups do not wait for each other."""

    def __init__(self) -> None:
        self.handed_over: collections.deque[tuple[str, dict[str, Any]]] = collections.deque()
        self.lock = threading.Lock()  # guards wake_up_pending and backlog, shared with the handing threads
        self.wake_up_pending = False
        self.backlog = 0
        self.dropping = False
        self.per_group: dict[str, collections.deque[dict[str, Any]]] = {}  # the loop's thread only
        self.tasks: set[asyncio.Task] = set()
        self.numbering = _Numbering()  # under self.lock

    def hand_over(self, loop: asyncio.AbstractEventLoop, group: str, event: dict[str, Any]) -> None:
        """Queue one event for the loop (any thread)."""
        with self.lock:
            # Numbered even if dropped just below: the sockets then see the jump.
            event = self.numbering.stamp(group, event)
            if self.backlog >= BACKLOG_MAX:
                if not self.dropping:
                    logger.warning("broadcasts dropped: %d events wait for the channel layer", self.backlog)
                self.dropping = True
                return
            self.backlog += 1
            self.handed_over.append((group, event))
            if self.wake_up_pending:  # one wake-up per burst: each costs a write to the loop's self-pipe
                return
            self.wake_up_pending = True
        try:
            # From the loop's own thread (livechat.loop_io's writes), without the self-pipe's write and wake-up.
            (loop.call_soon if _running_loop() is loop else loop.call_soon_threadsafe)(self._take_handed_over)
        except RuntimeError:  # closed since _serving_loop looked: nothing runs there any more, send them here
            with self.lock:
                stranded = list(self.handed_over)
                self.handed_over.clear()
                self.backlog -= len(stranded)
                self.wake_up_pending = False
            for stranded_group, stranded_event in stranded:
                _send_blocking(stranded_group, stranded_event)

    def _take_handed_over(self) -> None:
        with self.lock:
            self.wake_up_pending = False
        loop = asyncio.get_running_loop()
        while self.handed_over:
            group, event = self.handed_over.popleft()
            waiting = self.per_group.get(group)
            if waiting is not None:  # that group's task is sending: it takes this one after the others
                waiting.append(event)
                continue
            self.per_group[group] = collections.deque([event])
            task = loop.create_task(self._send_group(group))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _send_group(self, group: str) -> None:
        waiting = self.per_group[group]
        try:
            while waiting:
                if len(waiting) == 1:
                    message, count = waiting.popleft(), 1
                else:  # what arrived while the last publish was on its way: one message, in order
                    events = [waiting.popleft() for _ in range(min(len(waiting), BATCH_MAX))]
                    message, count = {"type": BATCH_TYPE, "events": events}, len(events)
                try:
                    await layer_here().group_send(group, message)
                except Exception:  # the layer is at-most-once by design; the stored item is what counts
                    logger.exception("broadcast to %s failed", group)
                finally:
                    self._sent(count)
        finally:  # nothing runs on the loop between the last check of `waiting` and this: no event is stranded
            del self.per_group[group]
            if waiting:  # cancelled (the loop is shutting down): these are lost, like anything else in flight
                self._sent(len(waiting))
            elif sequenced(group):
                with self.lock:
                    last = self.numbering.last.get(group, 0)
                asyncio.get_running_loop().call_later(TICK_DELAYS_S[0], self._tick_if_quiet, group, last, 0)

    def _tick_if_quiet(self, group: str, last: int, attempt: int) -> None:
        """Tell a group that went quiet the last `n` sent to it, so a socket that lost the burst's tail knows.
        Again a little later: the tick itself is lost if it reaches a socket whose queue is still full."""
        with self.lock:
            if self.numbering.last.get(group) != last or group in self.per_group:
                return  # more came since: that one's own quiet time will tick
        event = {"type": "layer.tick", "sent_by": self.numbering.sent_by, "group": group, "n": last}
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._send_tick(group, event))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        if attempt + 1 < len(TICK_DELAYS_S):
            loop.call_later(TICK_DELAYS_S[attempt + 1] - TICK_DELAYS_S[attempt], self._tick_if_quiet, group, last,
                            attempt + 1)

    async def _send_tick(self, group: str, event: dict[str, Any]) -> None:
        try:
            await layer_here().group_send(group, event)
        except Exception as error:  # the next tick or event shows the gap; the layer's own failure is logged there
            logger.warning("tick to %s failed: %s: %s", group, type(error).__name__, error)

    def _sent(self, count: int) -> None:
        with self.lock:
            self.backlog -= count
            if self.dropping and self.backlog < BACKLOG_MAX // 2:
                logger.warning("broadcasts flow again")
                self.dropping = False


_senders: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopSender]" = weakref.WeakKeyDictionary()
_senders_lock = threading.Lock()


def _sender_for(loop: asyncio.AbstractEventLoop) -> _LoopSender:
    sender = _senders.get(loop)
    if sender is None:
        with _senders_lock:  # two threads must not each start one: the order is kept by having only one
            sender = _senders.get(loop)
            if sender is None:
                sender = _senders[loop] = _LoopSender()
    return sender

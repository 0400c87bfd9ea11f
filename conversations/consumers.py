"""The two sockets of the contract: the visitor's widget and the advisor's inbox.

Consumers stay thin: parse, validate, authorize, call a service in a thread, reply. The database is the
source of truth; a socket replays what was stored after the client's `seq`, then forwards live items,
filling any gap from the database, so each item reaches it exactly once.
"""
import asyncio
import contextlib
import functools
import json
import logging
import time
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from redis.exceptions import RedisError

from advisors.models import Site
from advisors.services import advisor_record_activity
from conversations import events, handshake, selectors, services
from conversations.errors import ErrorCode, Refused
from conversations.models import Conversation, Visitor
from conversations.presenters import conversation_dict, message_dict, widget_conversation_dict
from livechat import loop_io, realtime
from livechat.compiled import ID_PLACEHOLDER, CompiledLookup
from livechat.db import database_call
from livechat.health import layer_watch
from livechat.layers import CHANNEL_BACKLOG_MAX_BYTES
from livechat.server import ClientDisconnected, text_sender_of, writable_of
from routing import presence

logger = logging.getLogger(__name__)
LIMITS = settings.LIVECHAT

CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_MANY_SOCKETS = 4429
CLOSE_FRAME_TOO_LARGE = 4009
CLOSE_SLOW_CONSUMER = 4008
CLOSE_UNAVAILABLE = 4503  # a part the server needs failed: reconnect (with `after`) a little later
CLOSE_GONE = 1006  # what disconnect() hears when the client vanished without a close frame (RFC 6455)

# What a part that is down raises: the database, or Redis behind the channel layer and the cache.
OUTAGES = (DatabaseError, RedisError, OSError, TimeoutError)
# Flow control: past this many bytes written but not yet read by the client, the socket waits for its client,
# and closes 4008 if the client does not read within SLOW_CONSUMER_S. A closed slow socket keeps its (bounded)
# buffer for SLOW_CONSUMER_LINGER_S, so a client that was only stalled still reads the close code.
SEND_BUFFER_MAX_BYTES = LIMITS.get("SEND_BUFFER_MAX_BYTES", 1024 * 1024)
SLOW_CONSUMER_S = LIMITS.get("SLOW_CONSUMER_S", 5)
SLOW_CONSUMER_LINGER_S = 30
REPLAY_PAGE = 200


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key == name:
            return value.decode("latin-1")
    return None


class _DaphneOutput:
    """The bytes daphne holds for one socket. ASGI has no flow control for WebSockets: daphne writes every frame
    straight into the socket's Twisted transport, which buffers without limit when the client stops reading.
    Reached through the `send` daphne gives the application (`partial(server.handle_reply, protocol)`); under
    another server (or the test communicator) there is none and nothing is measured."""

    def __init__(self, protocol):
        self.protocol = protocol

    @classmethod
    def of(cls, send) -> "_DaphneOutput | None":
        protocol = send.args[0] if isinstance(send, functools.partial) and send.args else None
        return cls(protocol) if hasattr(getattr(protocol, "transport", None), "dataBuffer") else None

    def unsent(self) -> int:
        transport = self.protocol.transport  # twisted's FileDescriptor: dataBuffer from offset, then the new writes
        return len(transport.dataBuffer) - transport.offset + getattr(transport, "_tempDataLen", 0)

    async def drained(self, below: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.unsent() > below:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    def linger(self, seconds: float) -> None:
        """Wait that long for the client's answer to our close frame (autobahn's default is 1 s)."""
        self.protocol.closeHandshakeTimeout = seconds


# The last layer message taken in place, and what it deserialized to: a group's message is offered to each of its
# sockets as the same bytes, one after the other, so it is deserialized once for all of them (and its frame, the
# same text object for each, is framed once: livechat.server). One tuple, read and replaced whole.
_last_taken: tuple[bytes | None, dict | None] = (None, None)


def _deserialized(layer, data: bytes) -> dict:
    global _last_taken
    taken = _last_taken
    if taken[0] is data:
        return taken[1]
    message = layer.deserialize(data)
    _last_taken = (data, message)
    return message


class JsonSocket(AsyncWebsocketConsumer):
    """Frames are JSON objects with a `type`; oversized frames close the socket, malformed ones get an error.

    A part that fails (database, Redis) closes the socket with 4503 rather than 1011, and when the channel layer
    comes back from an outage every socket closes the same way: its client reconnects and catches up."""

    output: _DaphneOutput | None = None
    writable = None  # livechat.server's flow-control flag for this socket (set: a send cannot wait)
    closing = False
    disconnect_called = False

    async def __call__(self, scope, receive, send):
        # Channels' session middleware (the inbox's cookie sign-in) wraps `send` to save the session on HTTP
        # responses; a socket's frames are never one, and the wrapper cost every frame a lazy session lookup.
        while hasattr(getattr(send, "__self__", None), "real_send"):
            send = send.__self__.real_send
        self.output = _DaphneOutput.of(send)
        self.writable = writable_of(send)
        try:
            await self._serve(scope, receive, send)
        except ClientDisconnected:
            # The client went away while a frame was on its way to it (an OSError, but no part is down): the
            # socket ends as if the client had closed it, without a warning; nobody is left to read a 4503.
            self.closing = True
            await self._ended(CLOSE_GONE)
        except OUTAGES as error:  # under the receive loop: the core layer polls Redis for this socket's channel
            logger.warning("%s: the channel layer failed: %s: %s; closing %s", type(self).__name__,
                           type(error).__name__, error, CLOSE_UNAVAILABLE)
            await self.close(code=CLOSE_UNAVAILABLE)
            await self._ended(CLOSE_UNAVAILABLE)

    async def _ended(self, code: int) -> None:
        """disconnect(), once: the client's own disconnect may have run it before what failed ended the socket."""
        if not self.disconnect_called:
            self.disconnect_called = True
            await self.disconnect(code)

    async def _serve(self, scope, receive, send) -> None:
        """Channels' AsyncConsumer.__call__, with a cheaper loop. Channels waits on the client and the layer with
        asyncio.wait and makes a new task for every message it receives; an inbox socket hears every message of
        its sites, so twenty sockets paid that twenty times per message. Here the socket's own task receives and
        dispatches the client's frames, and one more task the layer's messages, for the socket's whole life (no
        asyncio.wait either: each idle socket holds what it keeps, thousands of them on one process); a lock keeps
        dispatches one at a time, in arrival order, as before. The first of the two to end ends the socket: the
        client's disconnect (StopConsumer), or what failed.
        """
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.base_send = send
        dispatching = self.dispatching = asyncio.Lock()

        async def pump(source) -> None:
            while True:
                message = await source()
                async with dispatching:  # uncontended: no suspension
                    await self.dispatch(message)

        if self.channel_layer is None:
            with contextlib.suppress(StopConsumer):
                await pump(receive)
            return
        self.channel_name = await self.channel_layer.new_channel()
        this = asyncio.current_task()
        ended: list[BaseException | None] = []

        def layer_ended(task: asyncio.Task) -> None:  # the layer's pump never returns: it failed (or stopped)
            if not task.cancelled():
                ended.append(task.exception())
                this.cancel()

        layer_here = realtime.layer_here(self.channel_layer)  # without channels_redis's proxy coroutine per call
        backlog = getattr(layer_here, "channels", {}).get(self.channel_name)
        if (type(self).frame_now is not JsonSocket.frame_now and hasattr(backlog, "taker")
                and (send_text_now := text_sender_of(send)) is not None):
            backlog.taker = functools.partial(self._take_now, send_text_now)
        layer = asyncio.ensure_future(pump(functools.partial(layer_here.receive, self.channel_name)))
        layer.add_done_callback(layer_ended)
        try:
            await pump(receive)
        except StopConsumer:
            pass
        except asyncio.CancelledError:
            if not ended:
                raise  # cancelled from outside (the server shuts down)
            this.uncancel()
            if ended[0] is not None and not isinstance(ended[0], StopConsumer):
                raise ended[0] from None
        finally:
            layer.remove_done_callback(layer_ended)
            if not layer.done():
                layer.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopConsumer):
                    await layer

    def _take_now(self, send_text_now, data: bytes) -> bool:
        """The socket's channel's taker (livechat.layers._Backlog): a layer message handled in place while the socket
        is idle, when frame_now knows its frame and the server takes the frame at once; False, for the socket's own
        task to dispatch it, otherwise. Never raises: it runs in whichever task delivers to the channel."""
        if self.closing or self.dispatching.locked():
            return False
        try:
            text = self.frame_now(_deserialized(self.channel_layer, data))
            return text is not None and send_text_now(text)
        except Exception:  # the socket's own dispatch meets it again, and handles it there
            return False

    def frame_now(self, message: dict) -> str | None:
        """The frame a layer message sends, for those whose handler only sends one frame (see _take_now), or None.
        Its effects on the socket's state must be those of the handler, and the same if done twice; it must not
        change the message, which the group's sockets share (_deserialized)."""
        return None

    async def dispatch(self, message):
        # Not channels' dispatch: it hops to the database thread to close old connections before every frame and
        # group event (an inbox socket hears every message of its sites, so twenty inbox sockets made twenty hops
        # per message). Every database call here (livechat.db.database_call) returns its connection itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        if message["type"] == "websocket.disconnect":
            # Nothing more can be sent: a task still running for this socket (a resume after a gap) stops sending
            # instead of raising on the server's closed connection.
            self.closing = self.disconnect_called = True
            await handler(message)  # disconnect() handles its own failures; StopConsumer must get out
            return
        try:
            await handler(message)
        except ClientDisconnected:
            raise  # not an outage: __call__ ends the socket
        except OUTAGES as error:
            logger.warning("%s: %s: %s; closing %s", type(self).__name__, type(error).__name__, error,
                           CLOSE_UNAVAILABLE)
            await self.close(code=CLOSE_UNAVAILABLE)

    async def close(self, code=None, reason=None):
        if not self.closing:
            self.closing = True
            with contextlib.suppress(ClientDisconnected):  # a client already gone is closed
                await super().close(code=code, reason=reason)

    async def layer_recovered(self) -> None:
        await self.close(code=CLOSE_UNAVAILABLE)

    async def layer_tick(self, event) -> None:
        """A sequenced group went quiet (livechat.realtime): sockets that track its numbering override this."""

    async def layer_overflow(self, event) -> None:
        """The layer holds as much as it will for this socket, and drops the rest (livechat.layers): its client does
        not read, or not fast enough. Closed as a slow consumer: the client comes back and catches up."""
        logger.warning("%s: the layer holds %d bytes this client has not read; closing %s", type(self).__name__,
                       CHANNEL_BACKLOG_MAX_BYTES, CLOSE_SLOW_CONSUMER)
        if self.output is not None:  # daphne: wait for the client's answer to the close, as _drained does
            self.output.linger(SLOW_CONSUMER_LINGER_S)
        await self.close(code=CLOSE_SLOW_CONSUMER)

    async def realtime_batch(self, message) -> None:
        """Events that left for a group together during a burst (livechat.realtime): each in order, as if alone."""
        for event in message["events"]:
            await self.dispatch(event)

    async def receive(self, text_data=None, bytes_data=None):
        raw = text_data if text_data is not None else bytes_data
        size = len(raw) if bytes_data is not None or len(raw) * 4 <= LIMITS["FRAME_MAX_BYTES"] else len(raw.encode())
        if size > LIMITS["FRAME_MAX_BYTES"]:
            await self.close(code=CLOSE_FRAME_TOO_LARGE)
            return
        try:
            frame = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            frame = None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self.refuse(None, ErrorCode.BAD_REQUEST, "A frame is a JSON object with a string `type`.")
            return
        await self.receive_frame(frame)

    async def receive_frame(self, frame: dict) -> None:
        raise NotImplementedError

    async def send_json(self, frame: dict) -> None:
        if self.closing:
            return
        await self.send_text(json.dumps(frame, separators=(",", ":"), ensure_ascii=False))

    async def _drained(self) -> bool:
        """Wait a little for a client that stopped reading; close it 4008 (False) if it does not read."""
        if await self.output.drained(SEND_BUFFER_MAX_BYTES // 2, SLOW_CONSUMER_S):
            return True
        logger.warning("%s: the client does not read (%d bytes unsent); closing %s", type(self).__name__,
                       self.output.unsent(), CLOSE_SLOW_CONSUMER)
        self.output.linger(SLOW_CONSUMER_LINGER_S)
        await self.close(code=CLOSE_SLOW_CONSUMER)
        return False

    async def send_text(self, text: str) -> None:
        """Send one serialized frame, unless the client stopped reading: then wait for it a little, or close 4008.
        Group events may carry their frame serialized once for every socket (inbox.message).

        Two kinds of server: daphne's send never waits (it buffers without limit; `output` measures that buffer),
        uvicorn's waits until its transport drains below websockets' write limit (64 KB): a send that has not
        completed within SLOW_CONSUMER_S means the same slow client, and closes it the same way."""
        if self.closing:
            return
        if self.writable is not None and self.writable.is_set():  # the transport takes it now: nothing to time
            await self.base_send({"type": "websocket.send", "text": text})
            return
        if self.output is not None and self.output.unsent() > SEND_BUFFER_MAX_BYTES and not await self._drained():
            return
        try:
            async with asyncio.timeout(SLOW_CONSUMER_S):  # a timer handle, no task: cheap on every frame
                await self.send(text_data=text)
        except TimeoutError:
            # The frame itself is in the server's (bounded) buffer: only the wait for the client was cut short.
            logger.warning("%s: the client does not read (a send waited %s s); closing %s", type(self).__name__,
                           SLOW_CONSUMER_S, CLOSE_SLOW_CONSUMER)
            await self.close(code=CLOSE_SLOW_CONSUMER)

    async def refuse(self, client_id, code: str, detail: str, retry_after: float | None = None) -> None:
        frame = {"type": "error", "code": code, "detail": detail, "client_id": client_id}
        if retry_after is not None:
            frame["retry_after"] = retry_after
        await self.send_json(frame)


# ------------------------------------------------------------------------------ widget


# A widget socket's opening in three trips to a database thread (they were seven): each trip waits its turn in the
# database threads' queue, which under a crowd of arriving visitors is most of a greeting's delay. Its subscriptions
# come between the second and the third, so nothing stored meanwhile is missed: what the third reads is either in
# it or arrives through the groups.


@database_call
def _widget_handshake(key: str | None, origin: str | None,
                      address: str) -> tuple[Site | None, handshake.WaitingPlace | None]:
    """The site the socket opens on, if its key and the page's Origin name one that allows it, and the socket's
    place among its address's sockets waiting for their auth frame (None: the address holds too many)."""
    site = selectors.site_for_key(key)
    if site is None or not selectors.site_allows_origin(site, origin):
        return None, None
    return site, handshake.WaitingPlace(address) if handshake.unauthenticated_socket_open(address) else None


@database_call
def _widget_visitor(site: Site, token: str, place: handshake.WaitingPlace | None) -> Visitor | None:
    """The token's visitor on this site; once found, the socket gives its place among its address's
    unauthenticated ones back."""
    visitor = selectors.visitor_for_token(site=site, token=token)
    if visitor is not None and place is not None:
        place.give_back()
    return visitor


class _Joined:
    """What a socket's third trip brings back. `error`: the presence was counted (the socket must count it down
    when it closes) but what came after failed."""

    def __init__(self, conversation: dict | None = None, page: list[dict] | None = None,
                 error: DatabaseError | None = None):
        self.conversation, self.page, self.error = conversation, page or [], error


@database_call
def _widget_joined(visitor_id: int, conversation_id: int, after: int) -> _Joined:
    """The visitor online (one more socket), then the conversation as the widget shows it and the first page of
    the items after `after`."""
    services.visitor_presence_set(visitor_id=visitor_id, online=True)
    try:
        conversation = _JOINED_CONVERSATION.get(conversation_id)
        if conversation is None:
            raise Conversation.DoesNotExist(f"conversation {conversation_id} is gone")
        return _Joined(widget_conversation_dict(conversation), _visible_items(conversation_id, after))
    except DatabaseError as error:
        return _Joined(error=error)


# Every widget socket's join: compiled once (livechat.compiled).
_JOINED_CONVERSATION = CompiledLookup(
    lambda pk: Conversation.objects.select_related("assigned__user").filter(pk=pk).order_by()[:2], ID_PLACEHOLDER)


def _visible_items(conversation_id: int, after: int) -> list[dict]:
    """The next items the visitor may see after `after`, in order, at most REPLAY_PAGE of them."""
    return [message_dict(m) for m in selectors.messages_for_visitor(conversation_id=conversation_id, after=after,
                                                                     limit=REPLAY_PAGE)]


_visible_page = database_call(_visible_items)


@database_call
def _conversation_for_typing(conversation_id: int) -> Conversation:
    return Conversation.objects.select_related("site__chatbot", "visitor").get(pk=conversation_id)


WIDGET_SENDS = {
    "message": services.visitor_message_send,
    "button": services.visitor_button_press,
    "back_to_bot": services.visitor_back_to_bot,
}


class RateLimited(Exception):
    """The token's sends are over its rate limit: this one is refused and not stored."""

    def __init__(self, retry_after: float):
        super().__init__(f"rate limited; retry after {retry_after} s")
        self.retry_after = retry_after


async def _widget_send(kind: str, arguments: dict) -> services.Sent:
    """Take a slot of the token's rate limit, then store the send. A malformed frame is refused before it takes a
    slot (the services' own rules; they check again). The token's limit is shared with its image uploads
    (services.visitor_send_wait).

    A text to a conversation last seen live is tried on the event loop first (services.visitor_text_on_loop: its
    limit and its one statement, no thread); whatever that does not write, and every other send, goes to a
    database thread, with the slot already taken or taking it there."""
    if kind == "message" and arguments["live_hint"] and loop_io.available():
        client_id = services.client_id_clean(arguments["client_id"])
        text = services.message_text_clean(arguments["text"])
        visitor = arguments["visitor"]
        if (wait := await services.visitor_send_wait_on_loop(visitor_id=visitor.pk)) is not None:
            raise RateLimited(wait)
        sent = await services.visitor_text_on_loop(visitor=visitor, client_id=client_id, text=text)
        return sent if sent is not None else await _widget_send_in_thread(kind, arguments, slot_taken=True)
    return await _widget_send_in_thread(kind, arguments, slot_taken=False)


@database_call
def _widget_send_in_thread(kind: str, arguments: dict, *, slot_taken: bool) -> services.Sent:
    """The send in one trip to a database thread, its slot taken there first unless `slot_taken`, so the cache's
    blocking round trips (Redis) never stall the event loop and cost no second thread hop."""
    if not slot_taken:
        services.client_id_clean(arguments["client_id"])
        if kind == "message":
            services.message_text_clean(arguments["text"])
        if (wait := services.visitor_send_wait(visitor_id=arguments["visitor"].pk)) is not None:
            raise RateLimited(wait)
    return WIDGET_SENDS[kind](**arguments)


class WidgetConsumer(JsonSocket):
    """`/ws/widget/?site=KEY`: the Origin is checked against the site at the handshake, then the auth frame."""

    visitor = None
    conversation_id = None
    last_sent = 0
    auth_timer = None
    typing_at = 0.0
    counted_online = False
    place: handshake.WaitingPlace | None = None  # among its address's sockets waiting for their auth frame
    authenticating = False  # its auth frame came and is being checked
    joined_at: float | None = None  # when this socket announced itself to the token's others
    # The conversation was live when this socket last heard of it (its joining, a CONV event, its own last send):
    # its texts then try the one-statement write first (services.visitor_message_send's live_hint).
    live = True

    async def connect(self):
        key = (parse_qs(self.scope.get("query_string", b"").decode()).get("site") or [None])[0]
        self.address = handshake.client_address(self.scope)
        self.site, self.place = await _widget_handshake(key, _header(self.scope, b"origin"), self.address)
        if self.site is None:
            await self.close()  # before accept: HTTP 403 at the handshake
            return
        await self.accept()
        if self.place is None:
            await self.close(code=CLOSE_TOO_MANY_SOCKETS)  # too many sockets of this address wait for their auth
            return
        self.auth_timer = asyncio.get_running_loop().call_later(
            LIMITS["AUTH_TIMEOUT_S"], lambda: asyncio.ensure_future(self._auth_timed_out()))

    async def _auth_timed_out(self):
        # The deadline bounds the whole auth, the token's check included: that check waits on the database and the
        # cache, and a socket must not hang on a part that is down. A client whose frame came in time is not
        # refused (4401 would make the widget start its session again, one more request to a server already
        # behind): 4503, and it comes back a little later.
        if self.visitor is None:
            await self.close(code=CLOSE_UNAVAILABLE if self.authenticating else CLOSE_UNAUTHORIZED)

    async def disconnect(self, code):
        if self.auth_timer is not None:
            self.auth_timer.cancel()
        await self._no_longer_unauthenticated()
        layer_watch().discard(self)
        if self.visitor is None:
            return
        # Each step on its own: a part that is down must not keep the others (presence above all) from running.
        for group in (realtime.conversation_group(self.conversation_id), realtime.visitor_group(self.visitor.pk)):
            await self._try(self.channel_layer.group_discard(group, self.channel_name), "leave %s" % group)
        if self.joined_at is not None:
            await self._try(self._announce("left"), "tell its other sockets it left")
        if self.counted_online:
            await self._try(database_call(services.visitor_presence_set)(visitor_id=self.visitor.pk, online=False),
                            "go offline")

    async def _no_longer_unauthenticated(self) -> None:
        if self.place is not None and self.place.held:
            await database_call(self.place.give_back)()

    async def _try(self, step, what: str) -> None:
        try:
            await step
        except OUTAGES as error:
            logger.warning("visitor %s could not %s: %s: %s", self.visitor.pk, what, type(error).__name__, error)

    async def receive_frame(self, frame: dict) -> None:
        kind = frame["type"]
        if self.visitor is None:
            if kind != "auth":
                await self.close(code=CLOSE_UNAUTHORIZED)
                return
            await self._authenticate(frame)
        elif kind in WIDGET_SENDS:
            await self._send_item(kind, frame)
        elif kind == "typing":
            await self._typing()
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "auth":
            await self.refuse(None, "bad_request", "This socket is already authenticated.")
        else:
            await self.refuse(frame.get("client_id"), "bad_request", f"Unknown frame type {kind!r}.")

    async def _authenticate(self, frame: dict) -> None:
        token, after = frame.get("token"), frame.get("after", 0)
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            after = 0
        visitor = None
        if isinstance(token, str) and token:
            self.authenticating = True
            try:
                visitor = await _widget_visitor(self.site, token, self.place)
            except DatabaseError:
                await self.refuse(None, "unavailable", "The service is unavailable; try again shortly.")
                await self.close(code=CLOSE_UNAVAILABLE)
                return
            if self.closing:
                return  # the auth deadline passed meanwhile: closed 4503, the client comes back
        if visitor is None:
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        self.auth_timer.cancel()
        self.auth_timer = None
        # Kept for the socket's life: the visitor's id and site (all the services read of it), not the rows the
        # token's query loaded (the site, the conversation, its advisor and user), nor the site of the handshake.
        self.visitor = Visitor.from_db(visitor._state.db, ["id", "site_id"], (visitor.pk, visitor.site_id))
        self.conversation_id = visitor.conversation.pk
        self.site = visitor = None
        await self.channel_layer.group_add(realtime.conversation_group(self.conversation_id), self.channel_name)
        await self.channel_layer.group_add(realtime.visitor_group(self.visitor.pk), self.channel_name)
        layer_watch().add(self)
        self.joined_at, self.newer = time.time(), set()
        await self._announce("joined")
        joined = await _widget_joined(self.visitor.pk, self.conversation_id, after)
        self.counted_online = True
        if joined.error is not None:
            raise joined.error
        self.live = joined.conversation["status"] == Conversation.Status.LIVE
        await self.send_json({"type": "conversation", "conversation": joined.conversation})
        self.last_sent = after
        for item in joined.page:
            await self._send_once(item)
        if len(joined.page) == REPLAY_PAGE:
            await self._catch_up()

    # Sockets per token: each socket tells the token's others when it joins and leaves; one that knows of
    # SOCKETS_PER_TOKEN newer sockets is beyond the cap and closes. Nothing shared to race on between processes.
    async def _announce(self, kind: str) -> None:
        await self.channel_layer.group_send(realtime.visitor_group(self.visitor.pk),
                                            {"type": f"widget.{kind}", "channel": self.channel_name,
                                             "joined_at": self.joined_at})

    async def widget_joined(self, event):
        if (event["joined_at"], event["channel"]) > (self.joined_at, self.channel_name):
            self.newer.add(event["channel"])
            if len(self.newer) >= LIMITS["SOCKETS_PER_TOKEN"]:
                await self.close(code=CLOSE_TOO_MANY_SOCKETS)

    async def widget_left(self, event):
        self.newer.discard(event["channel"])

    async def widget_gone(self, event):
        """The conversation and its visitor were deleted: the token names nobody now (the widget starts anew)."""
        await self.close(code=CLOSE_UNAUTHORIZED)

    async def _send_item(self, kind: str, frame: dict) -> None:
        # The rules of a send (client_id, text, button) are the services': a refusal comes back as Refused.
        client_id = frame.get("client_id") if isinstance(frame.get("client_id"), str) else None
        arguments = {"visitor": self.visitor, "client_id": client_id}
        if kind == "message":
            arguments["text"] = frame.get("text")
            arguments["live_hint"] = self.live
        elif kind == "button":
            arguments["button"] = frame.get("button")
        try:
            sent = await _widget_send(kind, arguments)
        except RateLimited as limited:
            await self.refuse(client_id, ErrorCode.RATE_LIMITED, "Too many messages; wait a little.",
                              retry_after=limited.retry_after)
            return
        except Refused as refused:
            await self.refuse(client_id, refused.code, refused.detail)
            return
        except Conversation.DoesNotExist:  # deleted under this socket (before its widget.gone event arrived)
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        except DatabaseError:
            logger.exception("visitor %s: %s not stored", self.visitor.pk, kind)
            await self.refuse(client_id, ErrorCode.UNAVAILABLE,
                              "Not stored; send it again later with the same client_id.")
            return
        if sent.conversation is not None:
            self.live = sent.conversation.status == Conversation.Status.LIVE
        if not sent.created:
            # A repeated client_id: the stored item is its acknowledgement. If this socket already sent it (the
            # replay after a reconnect did), the client has it: sending it again would deliver it twice.
            await self._catch_up(before=sent.message.seq + 1)
            return
        visible = [message_dict(m) for m in sent.messages if m.visible_to_visitor]
        await self._deliver(visible, previous=sent.previous_public_seq)

    async def _deliver(self, items: list[dict], previous: int | None = None) -> None:
        """Send items once each, in order; fetch from the database whatever a dropped frame left out."""
        if items and previous is not None and previous > self.last_sent:
            await self._catch_up(before=items[0]["seq"])
        for item in items:
            await self._send_once(item)

    async def _catch_up(self, before: int | None = None) -> None:
        """Send what the database holds after the last item sent (and before `before`), a page at a time, so a
        long replay costs one page of memory and waits for a client that reads it."""
        while not self.closing:
            page = await _visible_page(self.conversation_id, self.last_sent)
            for item in page:
                if before is not None and item["seq"] >= before:
                    return
                await self._send_once(item)
            if len(page) < REPLAY_PAGE:
                return

    async def _send_once(self, item: dict) -> None:
        if item["seq"] > self.last_sent:
            await self.send_json({"type": "message", "message": item})
            self.last_sent = item["seq"]

    async def _typing(self) -> None:
        now = time.monotonic()
        if now - self.typing_at < LIMITS["TYPING_INTERVAL_S"]:
            return
        self.typing_at = now
        try:
            conversation = await _conversation_for_typing(self.conversation_id)
        except Conversation.DoesNotExist:  # deleted under this socket
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        await database_call(events.visitor_typing)(conversation)

    # Group events
    async def widget_message(self, event):
        await self._deliver([event["message"]], previous=event.get("previous"))

    async def widget_conversation(self, event):
        self.live = event["conversation"]["status"] == Conversation.Status.LIVE
        await self.send_json({"type": "conversation", "conversation": event["conversation"]})

    async def widget_typing(self, event):
        await self.send_json({"type": "typing", "name": event["name"]})


# ------------------------------------------------------------------------------ inbox


@database_call
def _changes_since(advisor, since: int) -> tuple[list[int], int]:
    return selectors.changes_since(advisor=advisor, since=since)


@database_call
def _changed_frames(advisor, ids: list[int]) -> list[tuple[int, int, str]]:
    """(id, read_seq, serialized `conversation` frame) for each of these conversations."""
    return [(c.pk, c.read_seq, _frame("conversation", conversation=conversation_dict(
        c, licensed=advisor.licensed, read_seq=c.read_seq, read_change=c.read_change)))
        for c in selectors.changed_page(advisor=advisor, ids=ids)]


@database_call
def _read_state(advisor) -> tuple[dict[int, int], int]:
    """The advisor's read positions, and a change number everything up to which this socket need not resume."""
    positions = selectors.read_positions(advisor=advisor)
    return positions, selectors.latest_change(advisor=advisor)


def _frame(kind: str, **fields) -> str:
    return json.dumps({"type": kind, **fields}, separators=(",", ":"), ensure_ascii=False)


# A gap seen on a group (livechat.realtime numbers their events): wait this long for the rest of a burst to
# arrive, then send what changed, once, rather than once per missing event.
GAP_RESUME_DELAY_S = 0.3


class InboxConsumer(JsonSocket):
    """`/ws/inbox/`: frames built for this advisor; one group per site and audience, one per advisor.

    Nothing is missed silently (CONTRACT section 5). The socket keeps `since`, a change number such that every
    change up to it in scope was delivered (live, or by a resume); `resume` from the client, or a gap in a group's
    numbering (an event the layer dropped), sends a `conversation` frame for each conversation changed after it,
    then `resumed` with the new position. A layer that reconnects closes the socket 4503 (JsonSocket), and a client
    that does not read is closed (4008): the client then reconnects and resumes.

    Read state is per advisor and changes only when that advisor reads: the socket keeps its advisor's read
    positions (loaded at connect, moved by the advisor's own read events), so an audience's `conversation` event
    costs no query, and its two frames (read, unread) come serialized once for every socket."""

    advisor = None
    groups_joined: set = frozenset()
    token_timer = None
    joined_at: float | None = None  # when this socket announced itself to the advisor's others
    resume_task = None
    presence_task = None  # keeps the advisor online while this socket is open (routing.presence)

    async def connect(self):
        if not handshake.inbox_handshake_allowed(self.scope):
            await self.close()  # a Host we do not serve, or a browser on another origin: HTTP 403 at the handshake
            return
        self.advisor = await database_call(selectors.advisor_for_user)(self.scope.get("user"))
        if self.advisor is None:
            await self.close()
            return
        self.session_key = getattr(self.scope.get("session"), "session_key", None)
        self.typing_at: dict[tuple[int, bool], float] = {}
        self.heard: dict[tuple[str, str], int] = {}  # (sender, group) -> the last `n` heard
        self.resume_lock = asyncio.Lock()
        await self._subscribe()
        # After joining the groups: whatever changes from now on reaches this socket live or shows as a gap.
        self.read_seqs, self.since = await _read_state(self.advisor)
        layer_watch().add(self)
        await self.accept()
        self.joined_at, self.newer = time.time(), set()
        await self._announce("joined")
        if (expires_at := self.scope.get("auth_token_expires_at")) is not None:  # a token socket ends with its token
            self.token_timer = asyncio.get_running_loop().call_later(
                max(0.0, (expires_at - timezone.now()).total_seconds()),
                lambda: asyncio.ensure_future(self.close(code=CLOSE_UNAUTHORIZED)))
        await database_call(advisor_record_activity)(advisor_id=self.advisor.pk)
        self.presence_task = asyncio.ensure_future(presence.keep_alive(self.advisor.pk))

    async def disconnect(self, code):
        layer_watch().discard(self)
        if self.resume_task is not None:
            self.resume_task.cancel()
        if self.presence_task is not None:
            self.presence_task.cancel()
            await presence.socket_closed(self.advisor.pk)
        if self.token_timer is not None:
            self.token_timer.cancel()
        if self.joined_at is not None:
            try:
                await self._announce("left")
            except OUTAGES as error:
                logger.warning("advisor %s: could not tell its other sockets it left: %s: %s", self.advisor.pk,
                               type(error).__name__, error)
        for group in self.groups_joined:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except OUTAGES as error:
                logger.warning("advisor %s could not leave %s: %s: %s", self.advisor.pk, group, type(error).__name__,
                               error)

    async def _subscribe(self) -> None:
        audience = events.audience_of(self.advisor)
        wanted = {realtime.site_inbox_group(site_id, audience) for site_id in self.advisor.site_ids}
        wanted |= {realtime.site_everyone_group(site_id) for site_id in self.advisor.site_ids}
        wanted.add(realtime.advisor_group(self.advisor.pk))
        for group in wanted - self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        for group in self.groups_joined - wanted:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = wanted

    # Sockets per advisor, as per token on the widget: each tells the advisor's others when it joins and leaves
    # (through the layer, so every process hears it); one that knows of INBOX_SOCKETS_PER_ADVISOR newer sockets
    # is the oldest beyond the cap and closes 4429.
    async def _announce(self, kind: str) -> None:
        await self.channel_layer.group_send(realtime.advisor_group(self.advisor.pk),
                                            {"type": f"advisor.socket_{kind}", "channel": self.channel_name,
                                             "joined_at": self.joined_at})

    async def advisor_socket_joined(self, event):
        if self.joined_at is not None and (event["joined_at"], event["channel"]) > (self.joined_at, self.channel_name):
            self.newer.add(event["channel"])
            if len(self.newer) >= LIMITS["INBOX_SOCKETS_PER_ADVISOR"]:
                await self.close(code=CLOSE_TOO_MANY_SOCKETS)

    async def advisor_socket_left(self, event):
        if self.joined_at is not None:
            self.newer.discard(event["channel"])

    async def receive_frame(self, frame: dict) -> None:
        kind = frame["type"]
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "typing":
            await self._typing(frame)
        elif kind == "resume":
            since = frame.get("since")
            if not isinstance(since, int) or isinstance(since, bool) or since < 0:
                await self.refuse(None, "bad_request", "`since` is a change number (an integer, 0 or more).")
                return
            await self._resume(since)
        else:
            await self.refuse(None, "bad_request", f"Unknown frame type {kind!r}.")

    async def dispatch(self, message):
        if "n" in message:  # every event of a numbered group, whatever its type (other modules add types)
            self._heard(message)
        await super().dispatch(message)

    async def _resume(self, since: int) -> None:
        """A `conversation` frame for each conversation in scope changed after `since`, then `resumed`."""
        async with self.resume_lock:
            ids, upto = await _changes_since(self.advisor, since)
            for start in range(0, len(ids), REPLAY_PAGE):
                for conversation_id, read_seq, text in await _changed_frames(self.advisor,
                                                                              ids[start:start + REPLAY_PAGE]):
                    self._read(conversation_id, read_seq)
                    await self.send_text(text)
            if self.closing:
                return
            self.since = max(self.since, upto) if since <= self.since else self.since
            await self.send_json({"type": "resumed", "change": upto})

    def _heard(self, event) -> None:
        """Follow a sequenced group's numbering; a number skipped means an event never arrived: resume shortly."""
        n = event.get("n")
        if n is None:
            return
        key = (event["sent_by"], event["group"])
        last = self.heard.get(key)
        if event["type"] == "layer.tick":
            missed = last is not None and n > last
        else:
            missed = last is not None and n > last + 1
        if last is None or n > last:
            self.heard[key] = n
        if missed:
            self._gap()

    def _gap(self) -> None:
        if self.resume_task is None and not self.closing:
            self.resume_task = asyncio.ensure_future(self._resume_after_gap())

    async def _resume_after_gap(self) -> None:
        try:
            await asyncio.sleep(GAP_RESUME_DELAY_S)
            logger.info("advisor %s: events were lost on the way; resuming from change %s", self.advisor.pk,
                        self.since)
            since = self.since
            self.resume_task = None  # a gap seen from here on needs a resume of its own
            await self._resume(since)
        except ClientDisconnected:
            pass  # the client left while it was being caught up: the socket's own end follows
        except OUTAGES as error:
            logger.warning("advisor %s: the resume after a gap failed (%s: %s); closing %s", self.advisor.pk,
                           type(error).__name__, error, CLOSE_UNAVAILABLE)
            await self.close(code=CLOSE_UNAVAILABLE)
        finally:
            if self.resume_task is asyncio.current_task():
                self.resume_task = None

    def _read(self, conversation_id: int, read_seq: int) -> None:
        if read_seq > self.read_seqs.get(conversation_id, 0):
            self.read_seqs[conversation_id] = read_seq

    async def _typing(self, frame: dict) -> None:
        """The visitor sees a reply being typed (never a note); the other advisors see who is replying."""
        conversation_id = frame.get("conversation")
        if not isinstance(conversation_id, int):
            return
        now, key = time.monotonic(), (conversation_id, frame.get("note") is True)  # a note's and a reply's apart
        if now - self.typing_at.get(key, 0) < LIMITS["TYPING_INTERVAL_S"]:
            return
        self.typing_at[key] = now
        try:
            conversation = await database_call(selectors.conversation_for_advisor)(
                advisor=self.advisor, conversation_id=conversation_id)
        except Refused as refused:
            await self.refuse(None, refused.code, refused.detail)
            return
        await database_call(events.advisor_typing)(conversation, self.advisor, note=frame.get("note") is True)

    # Group events
    def frame_now(self, message: dict) -> str | None:
        kind = message["type"]
        if kind == "inbox.message":
            text = message["frame"]
        elif kind == "inbox.conversation" and "read_seq" not in message:
            text = self._audience_frame(message)
        else:
            return None
        if "n" in message:
            self._heard(message)
        return text

    async def inbox_message(self, event):
        await self.send_text(event["frame"])

    async def inbox_conversation(self, event):
        if "read_seq" in event:  # this advisor read it (the advisor's group): the frame is built for us
            self._read(event["conversation"]["id"], event["read_seq"])
            await self.send_json({"type": "conversation", "conversation": event["conversation"]})
            return
        await self.send_text(self._audience_frame(event))

    def _audience_frame(self, event) -> str:
        """An audience's CONV: read state is per advisor, so it comes serialized both ways; ours, by the read
        position this socket keeps (moved first when this advisor is the one who read, by a reply)."""
        conversation_id = event["id"]
        reader = event.get("reader")
        if reader is not None and reader[0] == self.advisor.pk:
            self._read(conversation_id, reader[1])
        read, unread = event["frames"]
        return unread if event["last_seq"] > self.read_seqs.get(conversation_id, 0) else read

    async def inbox_read(self, event):
        self._read(event["conversation"], event["read_seq"])

    async def layer_tick(self, event):
        pass  # followed in dispatch, like every numbered event

    async def inbox_typing(self, event):
        await self.send_json({"type": "typing", "conversation": event["conversation"], "name": event["name"]})

    async def inbox_replying(self, event):
        if event["advisor"]["username"] != self.advisor.username:
            await self.send_json({"type": "replying", "conversation": event["conversation"],
                                  "advisor": event["advisor"]})

    async def inbox_presence(self, event):
        await self.send_json({"type": "presence", "conversation": event["conversation"], "online": event["online"]})

    async def advisor_changed(self, event):
        """The license, the sites or the chatbot visibility changed: the page is told (it reads /api/inbox/me again
        and says what changed) before a revoked license closes the socket, or after the groups follow the scope."""
        was_licensed = self.advisor.licensed
        self.advisor = await database_call(selectors.advisor_for_user)(self.scope.get("user"))
        if self.advisor is None or (was_licensed and not self.advisor.licensed):
            await self.send_json({"type": "access_changed"})
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        await self._subscribe()
        await self.send_json({"type": "access_changed"})

    async def advisor_logout(self, event):
        if self.session_key and event.get("session_key") == self.session_key:
            await self.close(code=CLOSE_UNAUTHORIZED)

    async def advisor_revoked(self, event):
        """A new password, a deactivation (every socket), or a revoked token (the sockets it opened):
        conversations.auth."""
        if event.get("token") is None or event["token"] == self.scope.get("auth_token"):
            await self.close(code=CLOSE_UNAUTHORIZED)

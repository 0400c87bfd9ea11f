"""The load generator: visitors and advisors on the public protocol, spread over several client processes.

`Generator(n)` starts n client processes (uvloop, `websockets`); each holds a slice of the sockets, sends at
its share of the target rate (open loop: sends go out on schedule whatever the server answers) and measures
what its sockets receive. Timestamps are CLOCK_MONOTONIC, which every process on the machine shares, so a
message sent by one client process and received by another has a true latency.

- visitor -> advisor: a visitor's `message` frame carries its send time in its text; every inbox socket of
  the conversation's site should receive it once (the product sends each new item to every inbox socket in
  scope). One sample per delivery; a delivery that never arrives is lost, a second one a duplicate.
- advisor -> visitor: a reply (REST on the product, a frame on the relay) to a conversation whose visitor this
  client process holds; one sample when the visitor's socket receives it.
- ack: the visitor's own message coming back to it (the product's acknowledgement).
Every loop here is bounded by a count and a deadline.
"""
import asyncio
import json
import multiprocessing
import random
import re
import time
from collections import Counter

ORIGIN = "http://127.0.0.1:8000"
NS = 1_000_000_000
RECONNECTS = 5  # per socket and run: a product socket closed under the load opens again, as real clients do
FINAL_CLOSES = {1000, 4401, 4403, 4009, 4429}  # ours, a refused token, a frame too big, too many sockets: no retry
CHANGE = re.compile(r'"change":(\d+)')


def now_ns() -> int:
    return time.monotonic_ns()


# ------------------------------------------------------------------------------ a tiny HTTP/1.1 client


STALE_CONNECTION = (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError)


class HttpPool:
    """Keep-alive HTTP/1.1 connections to one server (loopback), `size` requests in flight at most.

    A hand-written client so that the generator spends microseconds, not a general client's milliseconds,
    per request: it only needs JSON POST/GET with Content-Length or chunked answers."""

    def __init__(self, host: str, port: int, size: int):
        self.host, self.port = host, port
        self.free: asyncio.Queue = asyncio.Queue()
        for _ in range(size):
            self.free.put_nowait(None)

    async def request(self, method: str, path: str, *, token: str | None = None, body: dict | None = None,
                      timeout: float = 10.0) -> tuple[int, bytes]:
        try:
            return await self._request(method, path, token=token, body=body, timeout=timeout, fresh=False)
        except STALE_CONNECTION:
            # The server closed an idle kept-alive connection (uvicorn does after 5 s): once more on a new one.
            # The bench's POSTs carry a client_id, so sending one again never stores it twice.
            return await self._request(method, path, token=token, body=body, timeout=timeout, fresh=True)

    async def _request(self, method: str, path: str, *, token: str | None, body: dict | None, timeout: float,
                       fresh: bool) -> tuple[int, bytes]:
        conn = await self.free.get()
        if fresh and conn is not None:
            conn[1].close()
            conn = None
        try:
            if conn is None:
                conn = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), timeout)
            reader, writer = conn
            payload = json.dumps(body).encode() if body is not None else b""
            head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Accept: application/json"]
            if token:
                head.append(f"Authorization: Token {token}")
            if body is not None:
                head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
            status, data, keep = await asyncio.wait_for(self._response(reader), timeout)
            if not keep:
                writer.close()
                conn = None
            return status, data
        except BaseException:
            if conn is not None:
                conn[1].close()
            conn = None
            raise
        finally:
            self.free.put_nowait(conn)

    @staticmethod
    async def _response(reader) -> tuple[int, bytes, bool]:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = {}
        for line in head[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            data = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            for _ in range(100_000):
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            data = b"".join(parts)
        else:
            data = await reader.read()
            return status, data, False
        return status, data, headers.get("connection", "").lower() != "close"

    async def close(self) -> None:
        for _ in range(self.free.qsize()):
            conn = self.free.get_nowait()
            if conn is not None:
                conn[1].close()


# ------------------------------------------------------------------------------ one client process


class Step:
    """What one client process saw during one load step."""

    def __init__(self, name: str):
        self.name = name
        self.v2a: list[float] = []  # ms, one per delivery to an inbox socket
        self.v2a_sent: list[int] = []  # when each of those was sent (ns, CLOCK_MONOTONIC): latency over time
        self.a2v: list[float] = []
        self.ack: list[float] = []
        self.delivered: Counter = Counter()  # client_id -> inbox deliveries seen by this process
        self.replies_seen: Counter = Counter()
        self.sent: list[tuple[str, int]] = []  # (client_id, site) of visitor messages sent
        self.replies_sent: list[str] = []
        self.lag: list[float] = []  # ms the generator sent behind its schedule
        self.errors: Counter = Counter()
        self.last_frame = time.monotonic()

    def report(self) -> dict:
        return {"v2a": self.v2a, "v2a_sent": self.v2a_sent, "a2v": self.a2v, "ack": self.ack,
                "delivered": dict(self.delivered), "replies_seen": dict(self.replies_seen), "sent": self.sent,
                "replies_sent": self.replies_sent, "lag": self.lag, "errors": dict(self.errors)}


class Client:
    def __init__(self, index: int):
        self.index = index
        self.visitors: list[dict] = []  # each: spec + "ws"
        self.advisors: list[dict] = []
        self.replier = None  # relay mode: one inbox socket that sends the replies
        # one pool per server process, in the order they were connected: REST replies are dealt over them
        # round-robin, as the sockets are, so that a two-process run loads both processes alike
        self.http: dict[str, HttpPool] = {}
        self.steps: dict[str, Step] = {}
        self.closed = Counter()
        self.tasks: set = set()
        self.mode = "product"
        self.http_size = 0
        self.closing = False

    # sockets ---------------------------------------------------------------

    async def connect(self, *, url: str, mode: str, visitors: list[dict], advisors: list[dict], compression: bool,
                      concurrency: int, timeout: float, http_pool: int) -> dict:
        from websockets.asyncio.client import connect

        self.mode = mode
        had_visitors, had_advisors = len(self.visitors), len(self.advisors)
        started = time.monotonic()
        deadline = started + timeout
        failures: Counter = Counter()
        gate = asyncio.Semaphore(concurrency)
        options = {"compression": "deflate" if compression else None, "ping_interval": None, "max_size": 2 ** 20,
                   "open_timeout": 20, "close_timeout": 2, "max_queue": None}

        async def visitor(spec):
            async with gate:
                if time.monotonic() > deadline:
                    failures["deadline"] += 1
                    return
                try:
                    ws = await connect(f"{url}/ws/widget/?site={spec['site_key']}", origin=ORIGIN, **options)
                    auth = {"type": "auth", "token": spec["token"], "after": spec.get("after", 0)}
                    if mode == "relay":
                        auth.update(conversation=spec["conversation"], site=spec["site"])
                    await ws.send(json.dumps(auth))
                    for _ in range(10_000):  # the conversation frame, then any replay
                        frame = json.loads(await asyncio.wait_for(ws.recv(), max(1.0, deadline - time.monotonic())))
                        if frame.get("type") == "conversation":
                            break
                except Exception as error:  # counted and reported; the run goes on with the sockets it has
                    failures[type(error).__name__] += 1
                    return
                entry = dict(spec, ws=ws)
                self.visitors.append(entry)
                self._spawn(self._read_visitor(entry))

        async def advisor(spec):
            async with gate:
                try:
                    if mode == "relay":
                        ws = await connect(f"{url}/ws/inbox/?sites={','.join(map(str, spec['site_ids']))}", **options)
                    else:
                        ws = await connect(f"{url}/ws/inbox/",
                                         additional_headers={"Authorization": f"Token {spec['token']}"},
                                           **options)
                except Exception as error:
                    failures[f"advisor {type(error).__name__}"] += 1
                    return
                entry = dict(spec, ws=ws)
                self.advisors.append(entry)
                self._spawn(self._read_advisor(entry))

        await asyncio.gather(*(advisor(a) for a in advisors))
        await asyncio.gather(*(visitor(v) for v in visitors))
        host, port = url.split("//", 1)[1].rsplit(":", 1)
        if mode == "relay" and self.replier is None:
            self.replier = await connect(f"{url}/ws/inbox/?sites=", **options)
        elif mode == "product" and http_pool and url not in self.http:
            self.http[url] = HttpPool(host, int(port), http_pool)
        return {"visitors": len(self.visitors) - had_visitors, "advisors": len(self.advisors) - had_advisors,
                "failures": dict(failures),
                "seconds": time.monotonic() - started}

    def _spawn(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _step_of(self, client_id: str) -> Step | None:
        # client ids: "<kind>|<step>|<client process>|<n>"
        parts = client_id.split("|")
        return self.steps.get(parts[1]) if len(parts) == 4 else None

    async def _read_visitor(self, entry) -> None:
        for _ in range(RECONNECTS + 1):
            ws = entry["ws"]
            try:
                async for raw in ws:
                    received = now_ns()
                    self._visitor_frame(entry, json.loads(raw), received)
            except Exception as error:
                self.closed[f"visitor {type(error).__name__} {ws.close_code}"] += 1
            else:
                self.closed[f"visitor closed {ws.close_code}"] += 1
            if not await self._reopen(entry, "visitor", ws.close_code):
                return

    def _visitor_frame(self, entry: dict, frame: dict, received: int) -> None:
        """One frame a visitor socket received: a step's acknowledgement or reply, or a refused send."""
        kind = frame.get("type")
        if kind == "message":
            message = frame["message"]
            entry["seq"] = max(entry.get("seq", 0), message.get("seq") or 0)
            client_id = message.get("client_id") or ""
            step = self._step_of(client_id)
            if step is None:
                return
            step.last_frame = time.monotonic()
            sent = int(message["text"].split(" ", 2)[1])
            if client_id[0] == "v":
                step.ack.append((received - sent) / 1e6)
            else:
                step.a2v.append((received - sent) / 1e6)
                step.replies_seen[client_id] += 1
        elif kind == "error":
            step = self._step_of(frame.get("client_id") or "")
            if step is not None:
                step.errors[f"visitor error {frame.get('code')}"] += 1

    async def _read_advisor(self, entry) -> None:
        for _ in range(RECONNECTS + 1):
            ws = entry["ws"]
            try:
                async for raw in ws:
                    self._advisor_frame(entry, raw, now_ns())
            except Exception as error:
                self.closed[f"advisor {type(error).__name__} {ws.close_code}"] += 1
            else:
                self.closed[f"advisor closed {ws.close_code}"] += 1
            if not await self._reopen(entry, "advisor", ws.close_code):
                return

    def _advisor_frame(self, entry: dict, raw: str, received: int) -> None:
        if self.mode == "product" and (change := CHANGE.search(raw)):  # where a resume starts from
            entry["change"] = max(entry.get("change", 0), int(change.group(1)))
        if '"sender":"visitor"' not in raw:  # replies and other frames: not measured here
            return
        frame = json.loads(raw)
        if frame.get("type") != "message":
            return
        message = frame["message"]
        client_id = message.get("client_id") or ""
        step = self._step_of(client_id)
        if step is None:
            return
        step.last_frame = time.monotonic()
        sent = int(message["text"].split(" ", 2)[1])
        step.v2a.append((received - sent) / 1e6)
        step.v2a_sent.append(sent)
        step.delivered[client_id] += 1

    async def _reopen(self, entry: dict, kind: str, code: int | None) -> bool:
        """A product socket closed under us (4503 after a channel-layer outage, 4008 for a slow reader, a dropped
        connection): open it again as the widget (`auth` with `after`) and the inbox page (`resume` with the last
        `change` seen) do, at most RECONNECTS times per socket. What arrives through the replay or the resume is
        not counted as a live delivery: a step that saw a close loses on paper what it did not deliver live."""
        from websockets.asyncio.client import connect

        if self.mode != "product" or self.closing or code in FINAL_CLOSES or "url" not in entry:
            return False
        entry["reconnects"] = entry.get("reconnects", 0) + 1
        if entry["reconnects"] > RECONNECTS:
            return False
        await asyncio.sleep(random.uniform(0.5, 1.5) * entry["reconnects"])
        options = {"compression": None, "ping_interval": None, "max_size": 2 ** 20, "open_timeout": 20,
                   "close_timeout": 2, "max_queue": None}
        try:
            if kind == "visitor":
                if entry.get("local_addr"):
                    options["local_addr"] = entry["local_addr"]
                ws = await connect(f"{entry['url']}/ws/widget/?site={entry['site_key']}", origin=ORIGIN, **options)
                await ws.send(json.dumps({"type": "auth", "token": entry["token"], "after": entry.get("seq", 0)}))
            else:
                ws = await connect(f"{entry['url']}/ws/inbox/",
                                   additional_headers={"Authorization": f"Token {entry['token']}"}, **options)
                await ws.send(json.dumps({"type": "resume", "since": entry.get("change", 0)}))
        except Exception as error:
            self.closed[f"{kind} reconnect failed {type(error).__name__}"] += 1
            return False
        if self.closing:
            await ws.close()
            return False
        entry["ws"] = ws
        self.closed[f"{kind} reconnected"] += 1
        return True

    # load ------------------------------------------------------------------

    async def run(self, *, step: str, rate: float, reply_rate: float, duration: float, start_at: float,
                  grace: float) -> dict:
        """Send for `duration` seconds from `start_at` (a shared monotonic time), then wait for stragglers."""
        state = self.steps[step] = Step(step)
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        senders = [self._send_visitors(state, rate, duration)]
        if reply_rate > 0:
            senders.append(self._send_replies(state, reply_rate, duration))
        await asyncio.gather(*senders)
        # stragglers: wait for a quiet half second, at most `grace` seconds, counted from the end of every process's
        # sending (each paces its own share from a random offset, its last send due before start_at + duration). At
        # a slow step this process heard nothing for half a second while another still sent, stopped counting, and
        # the deliveries of the other's last messages were counted lost (25-45 at 1 msg/s).
        sending_ended = max(time.monotonic(), start_at + duration)
        await asyncio.sleep(sending_ended - time.monotonic())
        end = sending_ended + grace
        while time.monotonic() < end and time.monotonic() - max(state.last_frame, sending_ended) < 0.5:
            await asyncio.sleep(0.1)
        if self.mode == "product":
            for _ in range(int(grace * 10)):  # the REST replies still in flight
                if all(pool.free.qsize() == self.http_size for pool in self.http.values()):
                    break
                await asyncio.sleep(0.1)
        report = state.report()
        report["closed"] = dict(self.closed)
        del self.steps[step]
        return report

    async def _paced(self, rate: float, duration: float, state: Step, send) -> None:
        if rate <= 0 or not self.visitors:
            return
        start = time.monotonic() + random.random() / rate  # client processes interleave
        total = int(rate * duration)
        for n in range(total):
            due = start + n / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                state.lag.append(-delay * 1000)
            await send(n)

    async def _send_visitors(self, state: Step, rate: float, duration: float) -> None:
        visitors = self.visitors
        offset = random.randrange(len(visitors)) if visitors else 0

        async def send(n):
            entry = visitors[(offset + n) % len(visitors)]
            client_id = f"v|{state.name}|{self.index}|{n}"
            try:
                await entry["ws"].send(json.dumps({"type": "message", "client_id": client_id,
                                                   "text": f"bench {now_ns()} hello from a visitor"}))
                state.sent.append((client_id, entry["site"]))
            except Exception as error:
                state.errors[f"visitor send {type(error).__name__}"] += 1

        await self._paced(rate, duration, state, send)

    async def _send_replies(self, state: Step, rate: float, duration: float) -> None:
        visitors = self.visitors
        offset = random.randrange(len(visitors)) if visitors else 0
        inflight: set = set()

        servers = list(self.http.values())

        async def post(entry, client_id, http):
            text = f"bench {now_ns()} a reply from an advisor"
            try:
                if self.mode == "relay":
                    await self.replier.send(json.dumps({"type": "reply", "conversation": entry["conversation"],
                                                        "site": entry["site"], "client_id": client_id, "text": text}))
                    state.replies_sent.append(client_id)
                    return
                status, _ = await http.request(
                    "POST", f"/api/inbox/conversations/{entry['conversation']}/messages",
                    token=entry["advisor_token"], body={"client_id": client_id, "text": text})
                if status in (200, 201):
                    state.replies_sent.append(client_id)
                else:
                    state.errors[f"reply HTTP {status}"] += 1
            except Exception as error:
                state.errors[f"reply {type(error).__name__}"] += 1

        async def send(n):
            entry = visitors[(offset + 7919 * n) % len(visitors)]
            # round-robin, client processes starting apart; None only on the relay, which replies by frame
            http = servers[(n + self.index) % len(servers)] if servers else None
            task = asyncio.ensure_future(post(entry, f"a|{state.name}|{self.index}|{n}", http))
            inflight.add(task)
            task.add_done_callback(inflight.discard)

        await self._paced(rate, duration, state, send)
        if inflight:
            await asyncio.wait(inflight, timeout=10)

    async def close(self) -> dict:
        self.closing = True
        sockets = [e["ws"] for e in self.visitors + self.advisors] + ([self.replier] if self.replier else [])
        for chunk in range(0, len(sockets), 200):
            await asyncio.gather(*(ws.close() for ws in sockets[chunk:chunk + 200]), return_exceptions=True)
        for task in list(self.tasks):
            task.cancel()
        for pool in self.http.values():
            await pool.close()
        count = len(sockets)
        self.visitors, self.advisors, self.replier, self.http = [], [], None, {}
        self.closed.clear()
        self.closing = False
        return {"closed": count}


def _client_main(index: int, pipe, client_class: str = "bench.loadgen:Client") -> None:
    import importlib

    import uvloop

    module, _, name = client_class.partition(":")
    factory = getattr(importlib.import_module(module), name)

    async def serve():
        client = factory(index)
        loop = asyncio.get_running_loop()
        for _ in range(1_000_000):
            command = await loop.run_in_executor(None, pipe.recv)
            name = command.pop("cmd")
            if name == "exit":
                await client.close()
                pipe.send({"ok": True})
                return
            try:
                if name == "connect":
                    client.http_size = command.get("http_pool", 0)
                    result = await client.connect(**command)
                elif name == "run":
                    result = await client.run(**command)
                elif name == "close":
                    result = await client.close()
                elif hasattr(client, f"cmd_{name}"):  # a subclass's own commands (bench/mixed.py)
                    result = await getattr(client, f"cmd_{name}")(**command)
                else:
                    result = {"error": f"unknown command {name}"}
            except Exception as error:  # reported to the coordinator, which fails the run loudly
                result = {"error": f"{type(error).__name__}: {error}"}
            pipe.send(result)

    uvloop.run(serve())


# ------------------------------------------------------------------------------ the coordinator's side


class Generator:
    """n client processes; sockets are dealt round-robin so each process holds a fair share."""

    def __init__(self, processes: int, client_class: str = "bench.loadgen:Client"):
        context = multiprocessing.get_context("spawn")
        self.pipes = []
        self.processes = []
        for index in range(processes):
            ours, theirs = context.Pipe()
            process = context.Process(target=_client_main, args=(index, theirs, client_class), daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def _all(self, commands: list[dict], timeout: float) -> list[dict]:
        for pipe, command in zip(self.pipes, commands):
            pipe.send(command)
        results = []
        deadline = time.monotonic() + timeout
        for pipe in self.pipes:
            if not pipe.poll(max(0.1, deadline - time.monotonic())):
                raise TimeoutError("a client process did not answer in time")
            results.append(pipe.recv())
        for result in results:
            if "error" in result:
                raise RuntimeError(f"client process failed: {result['error']}")
        return results

    def connect(self, *, urls: list[str], mode: str, visitors: list[dict], advisors: list[dict],
                compression: bool = False, concurrency: int = 32, timeout: float = 120,
                http_pool: int = 8) -> dict:
        """Visitors and advisors are spread over the server processes in `urls` (one list per process)."""
        n = len(self.pipes)
        commands = []
        for index in range(n):
            mine_v = [dict(v, url=urls[i % len(urls)]) for i, v in enumerate(visitors) if i % n == index]
            mine_a = [dict(a, url=urls[i % len(urls)]) for i, a in enumerate(advisors) if i % n == index]
            commands.append((mine_v, mine_a))
        # a client process talks to one server process per connect call: group by url
        totals = Counter()
        failures = Counter()
        started = time.monotonic()
        for url in urls:
            left = max(5.0, timeout - (time.monotonic() - started))  # one deadline for all the servers
            batch = []
            for mine_v, mine_a in commands:
                batch.append({"cmd": "connect", "url": url, "mode": mode, "compression": compression,
                              "concurrency": concurrency, "timeout": left, "http_pool": http_pool,
                              "visitors": [v for v in mine_v if v["url"] == url],
                              "advisors": [a for a in mine_a if a["url"] == url]})
            for result in self._all(batch, left + 30):
                totals["visitors"] += result["visitors"]
                totals["advisors"] += result["advisors"]
                failures.update(result["failures"])
        return {"visitors": totals["visitors"], "advisors": totals["advisors"], "failures": dict(failures),
                "seconds": round(time.monotonic() - started, 1)}

    def connect_each(self, commands: list[dict], timeout: float = 240) -> list[dict]:
        """One connect command per client process (each may name its own server): servers fill in parallel."""
        return self._all([dict(c, cmd="connect", http_pool=0) for c in commands], timeout + 30)

    def run(self, *, step: str, rate: float, reply_rate: float, duration: float, grace: float = 3.0,
            extra: list[dict] | None = None) -> list[dict]:
        """One step on every client process; `extra` adds one dict of arguments per process (bench/mixed.py)."""
        n = len(self.pipes)
        start_at = time.monotonic() + 0.5
        command = {"cmd": "run", "step": step, "rate": rate / n, "reply_rate": reply_rate / n, "duration": duration,
                   "start_at": start_at, "grace": grace}
        more = extra or [{} for _ in range(n)]
        return self._all([dict(command, **more[i]) for i in range(n)], duration + grace + 60)

    def each(self, name: str, commands: list[dict], timeout: float) -> list[dict]:
        """A command of a client subclass, one argument dict per client process."""
        return self._all([dict(c, cmd=name) for c in commands], timeout)

    def close(self) -> None:
        self._all([{"cmd": "close"} for _ in self.pipes], 120)

    def shutdown(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send({"cmd": "exit"})
            except (BrokenPipeError, OSError):
                pass
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(5)


def summarize(reports: list[dict], *, expected_per_site: dict[int, int], duration: float) -> dict:
    """Merge the client processes' reports of one step into latencies, throughput, losses and errors."""
    v2a, v2a_sent, a2v, ack, lag = [], [], [], [], []
    delivered: Counter = Counter()
    replies_seen: Counter = Counter()
    sent, replies_sent = [], []
    errors: Counter = Counter()
    closed: Counter = Counter()
    for report in reports:
        v2a += report["v2a"]
        v2a_sent += report.get("v2a_sent", [])
        a2v += report["a2v"]
        ack += report["ack"]
        lag += report["lag"]
        delivered.update(report["delivered"])
        replies_seen.update(report["replies_seen"])
        sent += report["sent"]
        replies_sent += report["replies_sent"]
        errors.update(report["errors"])
        closed.update(report["closed"])
    expected = sum(expected_per_site.get(site, 0) for _, site in sent)
    got = sum(min(delivered[cid], expected_per_site.get(site, 0)) for cid, site in sent)
    duplicates = sum(max(0, delivered[cid] - expected_per_site.get(site, 0)) for cid, site in sent)
    replies_got = sum(1 for cid in replies_sent if replies_seen[cid] > 0)
    return {
        "sent": len(sent), "replies_sent": len(replies_sent), "acked_per_s": round(len(ack) / duration, 1),
        "throughput": round((len(sent) + len(replies_sent)) / duration, 1),
        "deliveries_expected": expected, "deliveries": got, "lost": expected - got, "duplicates": duplicates,
        "replies_lost": len(replies_sent) - replies_got,
        "replies_duplicated": sum(max(0, replies_seen[cid] - 1) for cid in replies_sent),
        "v2a": percentiles(v2a), "a2v": percentiles(a2v), "ack": percentiles(ack),
        "generator_lag_ms": percentiles(lag) if lag else None, "late_sends": len(lag),
        "errors": dict(errors), "closed": dict(closed),
        "v2a_by_second": by_second(v2a, v2a_sent),
        "_v2a_samples": v2a,
    }


def by_second(latencies: list[float], sent_ns: list[int]) -> list[dict]:
    """v->a per second of the step, by when the message was sent: a p99 spoiled by one stall shows as one bad
    second, a server that falls behind as seconds getting worse."""
    if not sent_ns or len(sent_ns) != len(latencies):
        return []
    first = min(sent_ns)
    seconds: dict[int, list[float]] = {}
    for latency, sent in zip(latencies, sent_ns):
        seconds.setdefault((sent - first) // 1_000_000_000, []).append(latency)
    return [{"s": second, **percentiles(values)} for second, values in sorted(seconds.items())]


def worst_seconds(seconds: list[dict], count: int = 3) -> str:
    """The `count` seconds with the highest p99, for the log line: '12 s: p99 310 ms, ...'."""
    worst = sorted(seconds, key=lambda second: second.get("p99", 0), reverse=True)[:count]
    return ", ".join(f"{second['s']} s: p99 {second['p99']:.0f} ms" for second in sorted(worst, key=lambda w: w["s"]))


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def at(q):
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {"n": len(ordered), "p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": round(ordered[-1], 3)}

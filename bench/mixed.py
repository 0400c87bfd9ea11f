"""The mixed profile: what a support team's day looks like, on one product process.

Visitors are not seeded: they arrive through the public API, as the widget brings them.
1. **Arrival** (`--arrival-seconds`, 60): `--visitors` new visitors (1,000 by default) arrive at an even pace,
   each as a browser would: `POST /api/widget/sessions` (a new connection, `Origin` of the site), the widget
   socket and its `auth` frame, then the bot's greeting (item 1, stored by the POST, replayed after `auth`).
   *Arrival* latency is the time from the POST to the greeting frame on the socket; every refusal (HTTP 429 of
   the per-address limit included) and every socket that never hears its greeting is an error.
   Each visitor then walks the demo bot (CONTRACT section 2) with a think time between steps: its first name,
   its company, "Pricing" for one visitor in four (the menu again), then "Talk to a human": the conversation is
   escalated, live and unassigned. *Bot* latency: a visitor's frame to the bot's answer on its socket.
   *Escalation -> inbox*: the press of "Talk to a human" to the `conversation` frame (status live) on each of
   the team's inbox sockets; one that never comes is lost.
2. **Steps** (`--mixed-rates`, 25, 50, 100 messages/s): the escalated visitors write (frames) and the team
   replies over REST (`--reply-share`), each conversation by one advisor (its id modulo the team), so the first
   reply assigns it; meanwhile new visitors keep arriving and walking the bot (`--mixed-arrival-share` of the
   rate, in items stored). The rate counts every item stored: visitor messages, walk items, replies.
   v->a, a->v, losses and errors as in the other configurations (every inbox socket of the team hears every
   live conversation's messages).

The team (`bench/seed.py`): 20 licensed advisors with the inbox open (20 sockets), 2 of them seeing the bot's
conversations, e-mails on escalation off; a Celery worker runs beside the web process as in production.

Addresses: each new visitor connects from one of `--arrival-addresses` loopback addresses (127.0.100.x), so the
product's own per-address limit (SESSIONS_PER_ADDRESS_PER_MINUTE, 60 by default) stays as shipped: 1,000
visitors a minute over 50 addresses is 20 per address. The product reads the peer address (REMOTE_ADDR);
`--arrival-addresses 1` sends everything from 127.0.0.1 and raises the limit in the server's environment instead.
"""
import asyncio
import json
import random
import time
from collections import Counter

from bench import loadgen, servers
from bench.loadgen import ORIGIN, Client, HttpPool, now_ns, percentiles

WALK_ITEMS = 3.25  # visitor items a walk stores on average: name, company, a quarter "Pricing", "Talk to a human"
SOCKET_OPTIONS = {"compression": None, "ping_interval": None, "max_size": 2 ** 20, "open_timeout": 20,
                  "close_timeout": 2, "max_queue": None}


def _bot_input(variable: str):
    def match(frame: dict) -> bool:
        message = frame.get("message") or {}
        return (frame.get("type") == "message" and message.get("sender") == "bot"
                and (message.get("input") or {}).get("variable") == variable)
    return match


def _bot_menu(frame: dict) -> bool:
    message = frame.get("message") or {}
    return frame.get("type") == "message" and message.get("sender") == "bot" and bool(message.get("buttons"))


def _escalated(frame: dict) -> bool:
    return frame.get("type") == "conversation" and (frame.get("conversation") or {}).get("status") == "live"


class Arrivals:
    """What one client process saw of the visitors it brought in."""

    def __init__(self):
        self.attempted = 0
        self.greeted = 0
        self.escalated = 0
        self.post_ms: list[float] = []
        self.handshake_ms: list[float] = []  # the widget socket's opening handshake
        self.greeting_ms: list[float] = []  # `auth` sent -> the greeting frame
        self.arrival_ms: list[float] = []
        self.arrival_started: list[int] = []  # CLOCK_MONOTONIC ns of each arrival's POST, beside arrival_ms
        self.bot_ms: list[float] = []
        self.errors: Counter = Counter()

    def report(self) -> dict:
        return {"attempted": self.attempted, "greeted": self.greeted, "escalated": self.escalated,
                "post_ms": self.post_ms, "handshake_ms": self.handshake_ms,
                "greeting_ms": self.greeting_ms, "arrival_ms": self.arrival_ms,
                "arrival_started": self.arrival_started, "bot_ms": self.bot_ms,
                "errors": dict(self.errors)}


async def _session_post(host: str, port: int, site_key: str, address: str, timeout: float) -> tuple[int, bytes]:
    """A new visitor's first request: a fresh connection from `address`, as a new browser opens one."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, local_addr=(address, 0)), timeout)
    try:
        payload = json.dumps({"site": site_key, "page": "http://127.0.0.1:8000/pricing"}).encode()
        head = ["POST /api/widget/sessions HTTP/1.1", f"Host: {host}:{port}", "Accept: application/json",
                f"Origin: {ORIGIN}", "Content-Type: application/json", f"Content-Length: {len(payload)}",
                "Connection: close"]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        status, data, _ = await asyncio.wait_for(HttpPool._response(reader), timeout)
        return status, data
    finally:
        writer.close()


class MixedClient(Client):
    """A load client process that also brings visitors in through the widget API and walks them through the bot."""

    def __init__(self, index: int):
        super().__init__(index)
        self.escalated_at: dict[int, int] = {}  # conversation -> when its visitor pressed "Talk to a human"
        self.live_seen: dict[str, int] = {}  # "username|conversation" -> first CONV frame with status live
        self.walk_acked = 0  # walk items stored (their acknowledgement reached the visitor)
        self.walk_errors: Counter = Counter()
        self.arrived: list[dict] = []  # every socket opened here, walking or live, for close()

    # frames ------------------------------------------------------------------

    def _visitor_frame(self, entry: dict, frame: dict, received: int) -> None:
        """As the base client's, and the bot walk: the answer a walking visitor waits for, its own items' acks."""
        waiter = entry.get("waiter")
        if waiter is not None and not waiter[1].done() and waiter[0](frame):
            entry["waiter"] = None
            waiter[1].set_result(received)
        kind = frame.get("type")
        if kind == "message" and (frame["message"].get("client_id") or "").startswith("w-"):
            entry["seq"] = max(entry.get("seq", 0), frame["message"].get("seq") or 0)
            self.walk_acked += 1
        elif kind == "error" and (frame.get("client_id") or "").startswith("w-"):
            self.walk_errors[f"walk error {frame.get('code')}"] += 1
        else:
            super()._visitor_frame(entry, frame, received)

    def _advisor_frame(self, entry: dict, raw: str, received: int) -> None:
        """As the base client's, and the first `conversation` frame of each conversation gone live."""
        if '"status":"live"' in raw and '"type":"conversation"' in raw:
            frame = json.loads(raw)
            conversation = frame.get("conversation") or {}
            if (frame.get("type") == "conversation" and conversation.get("status") == "live"
                    and conversation.get("assigned") is None):
                self.live_seen.setdefault(f"{entry['username']}|{conversation['id']}", received)
        super()._advisor_frame(entry, raw, received)

    def _expect(self, entry: dict, predicate) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        entry["waiter"] = (predicate, future)
        return future

    # one visitor ---------------------------------------------------------------

    async def _arrive(self, stats: Arrivals, k: int, *, url: str, site_key: str, site_id: int, address: str,
                      owners: list[str], think: float, tag: str) -> None:
        from websockets.asyncio.client import connect

        host, port = url.split("//", 1)[1].rsplit(":", 1)
        stats.attempted += 1
        started = now_ns()
        try:
            status, body = await _session_post(host, int(port), site_key, address, timeout=20)
        except Exception as error:
            stats.errors[f"session {type(error).__name__}"] += 1
            return
        stats.post_ms.append((now_ns() - started) / 1e6)
        if status != 201:
            stats.errors[f"session HTTP {status}"] += 1
            return
        data = json.loads(body)
        conversation = data["conversation"]["id"]
        entry = {"token": data["token"], "conversation": conversation, "site": site_id, "site_key": site_key,
                 "advisor_token": owners[conversation % len(owners)], "waiter": None, "url": url,
                 "local_addr": (address, 0)}
        opening = now_ns()
        try:
            ws = await connect(f"{url}/ws/widget/?site={site_key}", origin=ORIGIN, local_addr=(address, 0),
                               **SOCKET_OPTIONS)
        except Exception as error:
            stats.errors[f"socket {type(error).__name__}"] += 1
            return
        stats.handshake_ms.append((now_ns() - opening) / 1e6)
        entry["ws"] = ws
        self.arrived.append(entry)
        greeting = self._expect(entry, _bot_input("PRENOM"))
        self._spawn(self._read_visitor(entry))
        authenticating = now_ns()
        try:
            await ws.send(json.dumps({"type": "auth", "token": data["token"], "after": 0}))
            greeted = await asyncio.wait_for(greeting, 20)
        except Exception as error:
            stats.errors[f"no greeting ({type(error).__name__})"] += 1
            return
        stats.greeted += 1
        stats.greeting_ms.append((greeted - authenticating) / 1e6)
        stats.arrival_ms.append((greeted - started) / 1e6)
        stats.arrival_started.append(started)
        walk = [("message", {"text": f"V{tag}{k}"}, _bot_input("SOCIETE")),
                ("message", {"text": f"Company {k % 97}"}, _bot_menu)]
        if k % 4 == 0:
            walk.append(("button", {"button": "b-1"}, _bot_menu))
        walk.append(("button", {"button": "b-2"}, _escalated))
        for n, (kind, fields, predicate) in enumerate(walk):
            await asyncio.sleep(think * random.uniform(0.5, 1.5))
            answer = self._expect(entry, predicate)
            sent = now_ns()
            if fields.get("button") == "b-2":
                self.escalated_at[conversation] = sent
            try:
                await ws.send(json.dumps({"type": kind, "client_id": f"w-{tag}-{self.index}-{k}-{n}", **fields}))
                answered = await asyncio.wait_for(answer, 20)
            except Exception as error:
                stats.errors[f"walk step {n} ({type(error).__name__})"] += 1
                return
            stats.bot_ms.append((answered - sent) / 1e6)
        stats.escalated += 1
        self.visitors.append(entry)  # live now: the steps' senders write from it, its owner replies to it

    async def _arrivals(self, stats: Arrivals, *, url: str, site_key: str, site_id: int, indexes: list[int],
                        total: int, window: float, start_at: float, addresses: list[str], owners: list[str],
                        think: float, tag: str, deadline: float) -> None:
        """Visitor k arrives at start_at + k * window / total (open loop: on schedule whatever the server does)."""
        tasks = []
        for k in indexes:
            delay = start_at + k * window / max(1, total) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.monotonic() > deadline:
                stats.errors["not started: deadline"] += 1
                continue
            tasks.append(asyncio.ensure_future(self._arrive(
                stats, k, url=url, site_key=site_key, site_id=site_id, address=addresses[k % len(addresses)],
                owners=owners, think=think, tag=tag)))
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=max(1.0, deadline - time.monotonic()))
            for task in pending:
                task.cancel()
                stats.errors["walk unfinished: deadline"] += 1

    def _drain(self) -> dict:
        report = {"escalated_at": self.escalated_at, "live_seen": self.live_seen, "walk_acked": self.walk_acked,
                  "walk_errors": dict(self.walk_errors)}
        self.escalated_at, self.live_seen, self.walk_acked, self.walk_errors = {}, {}, 0, Counter()
        return report

    # commands -------------------------------------------------------------------

    async def cmd_arrive(self, *, arrivals: dict, quiet: float = 1.0) -> dict:
        stats = Arrivals()
        await self._arrivals(stats, **arrivals)
        await asyncio.sleep(quiet)  # the inbox sockets' last escalation frames
        return dict(stats.report(), **self._drain())

    async def cmd_collect(self, *, seconds: float) -> dict:
        """After the last step: the escalation frames still on their way to the inbox sockets."""
        await asyncio.sleep(seconds)
        return self._drain()

    async def run(self, *, arrivals: dict | None = None, **step) -> dict:
        stats = Arrivals()
        task = asyncio.ensure_future(self._arrivals(stats, **arrivals)) if arrivals else None
        report = await super().run(**step)
        if task is not None:
            await task
        report["arrivals"] = stats.report()
        report.update(self._drain())
        return report

    async def close(self) -> dict:
        self.closing = True
        walking = [e for e in self.arrived if e not in self.visitors]
        for chunk in range(0, len(walking), 200):
            await asyncio.gather(*(e["ws"].close() for e in walking[chunk:chunk + 200]), return_exceptions=True)
        self.arrived = []
        return await super().close()


# ------------------------------------------------------------------------------ the coordinator's side


def addresses(count: int) -> list[str]:
    if count <= 1:
        return ["127.0.0.1"]
    return [f"127.0.100.{i + 1}" for i in range(min(count, 250))]


def arrival_commands(n_clients: int, *, first: int, total: int, window: float, start_at: float, urls: list[str],
                     site: dict, owners: list[str], addresses: list[str], think: float, tag: str,
                     deadline: float) -> list[dict]:
    """Arrivals first .. first+total-1, dealt round-robin over the client processes; client i brings its visitors to
    the web process urls[i % len(urls)] (with --mixed-processes 2, half the visitors on each)."""
    return [{"url": urls[i % len(urls)], "site_key": site["key"], "site_id": site["id"], "total": total,
             "window": window, "start_at": start_at, "indexes": [k for k in range(total) if k % n_clients == i],
             "addresses": addresses[first % len(addresses):] + addresses[:first % len(addresses)],
             "owners": owners, "think": think, "tag": f"{tag}-{first}", "deadline": deadline}
            for i in range(n_clients)]


def merge_arrivals(reports: list[dict]) -> dict:
    post, handshake, greeting, arrival, started, bot = [], [], [], [], [], []
    errors: Counter = Counter()
    counts = Counter()
    for report in reports:
        post += report["post_ms"]
        handshake += report["handshake_ms"]
        greeting += report["greeting_ms"]
        arrival += report["arrival_ms"]
        started += report["arrival_started"]
        bot += report["bot_ms"]
        errors.update(report["errors"])
        errors.update(report.get("walk_errors", {}))
        for key in ("attempted", "greeted", "escalated"):
            counts[key] += report[key]
    return {**counts, "session_post_ms": percentiles(post), "handshake_ms": percentiles(handshake),
            "greeting_ms": percentiles(greeting), "arrival_ms": percentiles(arrival),
            "bot_ms": percentiles(bot), "errors": dict(errors),
            "arrival_by_10s": by_window(arrival, started, 10)}


def by_window(latencies: list[float], started_ns: list[int], seconds: int) -> list[dict]:
    """Arrival latency per `seconds` of the arrival, by when each visitor started: a server that falls behind shows
    as windows getting worse (a backlog that grows while visitors keep coming), a stall as one bad window."""
    if not started_ns or len(started_ns) != len(latencies):
        return []
    first = min(started_ns)
    windows: dict[int, list[float]] = {}
    for latency, start in zip(latencies, started_ns):
        windows.setdefault((start - first) // (seconds * 1_000_000_000) * seconds, []).append(latency)
    return [{"s": window, **percentiles(values)} for window, values in sorted(windows.items())]


class Escalations:
    """Presses of "Talk to a human" against the `conversation` frames the team's inbox sockets received: the
    first one with status live and nobody assigned, the escalation itself (a later frame, e.g. the first reply
    assigning it, does not stand in for a missed one). Split between the advisors who saw the conversation
    while the bot had it (watchers) and those for whom it enters their inbox with the escalation."""

    def __init__(self, team: list[dict]):
        self.team = [(a["username"], bool(a.get("sees_chatbot"))) for a in team]
        self.pressed: dict[int, int] = {}
        self.seen: dict[str, int] = {}

    def add(self, report: dict) -> None:
        self.pressed.update({int(k): v for k, v in report.get("escalated_at", {}).items()})
        for key, value in report.get("live_seen", {}).items():
            self.seen[key] = min(value, self.seen.get(key, value))

    def summary(self) -> dict:
        samples: dict[bool, list[float]] = {True: [], False: []}
        lost: Counter = Counter()
        for conversation, pressed in self.pressed.items():
            for who, watcher in self.team:
                seen = self.seen.get(f"{who}|{conversation}")
                if seen is None:
                    lost[watcher] += 1
                else:
                    samples[watcher].append((seen - pressed) / 1e6)
        return {"escalations": len(self.pressed), "deliveries_expected": len(self.pressed) * len(self.team),
                "lost": lost[True] + lost[False], "latency_ms": percentiles(samples[True] + samples[False]),
                "watchers": {"lost": lost[True], "latency_ms": percentiles(samples[True])},
                "others": {"lost": lost[False], "latency_ms": percentiles(samples[False])}}


def seconds_needed(args) -> float:
    """What the mixed configuration takes: start, arrival and its walks' tail, each step with its walks, stop."""
    return 25 + args.arrival_seconds + 4 * args.think + 5 + len(args.mixed_rates) * (args.step_seconds + 10)


def run_mixed(config: str, *, args, manifest: dict, env: dict, stamp: str, budget, log_dir, log,
              healthy, histogram, redis_cleanup, sustained_rate) -> dict:
    """The mixed profile on --mixed-processes processes (1) of `config` (e.g. uvicorn-pubsub-mixed): arrival, then
    steps."""
    kind, layer, _ = config.split("-")
    processes = max(1, getattr(args, "mixed_processes", 1))
    name = f"{config}x{processes}"
    prefix = f"bench-{stamp}-{name}"
    team = manifest["mixed"]["advisors"][:args.advisors]
    site = manifest["mixed"]["site"]
    owners = [a["token"] for a in team]
    spread = addresses(args.arrival_addresses)
    server_env = dict(env, CHANNEL_LAYER_PREFIX=prefix, REMINDER_DELAY_S="0")
    if len(spread) > 1:  # the product's own limits: every visitor comes from an address of its own share
        server_env.pop("SESSIONS_PER_ADDRESS_PER_MINUTE", None)
        server_env.pop("UNAUTHENTICATED_SOCKETS_PER_ADDRESS", None)
    result = {"name": name, "config": config, "processes": processes, "steps": [], "mixed": True,
              "team": len(team), "bot_watchers": sum(1 for a in team if a.get("sees_chatbot")),
              "arrival_addresses": len(spread),
              "sessions_per_address_per_minute": server_env.get("SESSIONS_PER_ADDRESS_PER_MINUTE", "product default")}
    server = servers.start_product(name, kind=kind, layer=layer, processes=processes, env=server_env,
                                   log_dir=log_dir)
    worker = servers.start_worker(f"{name}-worker", env=server_env, log_dir=log_dir)
    gen = loadgen.Generator(args.clients, client_class="bench.mixed:MixedClient")
    escalations = Escalations(team)
    n = len(gen.pipes)
    arrived = 0
    try:
        connected = gen.connect(urls=server.urls, mode="product", visitors=[], advisors=team, timeout=60)
        log(f"{name}: {connected['advisors']} inbox sockets {connected['failures'] or ''}")
        # 1. arrival: --visitors new visitors within --arrival-seconds, each walking the bot to a human
        window = args.arrival_seconds
        meter = servers.CpuMeter({"server": server.pids, "worker": worker.pids, "generator": gen.pids})
        meter.start()
        start_at = time.monotonic() + 1.0
        deadline = start_at + window + 40
        reports = gen.each("arrive", [{"arrivals": command} for command in arrival_commands(
            n, first=0, total=args.visitors, window=window, start_at=start_at, urls=server.urls, site=site,
            owners=owners,
            addresses=spread, think=args.think, tag="a", deadline=deadline)], timeout=window + 120)
        usage = meter.stop()
        arrived = args.visitors
        for report in reports:
            escalations.add(report)
        arrival = merge_arrivals(reports)
        stored = sum(r["walk_acked"] for r in reports) + arrival["attempted"]  # the greeting: one item each
        cpu_s = usage["cpu_pct_of_core"]["server"] / 100 * usage["wall_s"]
        arrival.update(window_s=window, usage=usage,
                       server_cpu_ms_per_arrival=round(1000 * cpu_s / max(1, arrival["greeted"]), 2),
                       escalation=escalations.summary())
        result["arrival"] = arrival
        log(f"{name} arrival: {arrival['greeted']}/{arrival['attempted']} greeted, {arrival['escalated']} escalated in "
            f"{window:.0f}s; POST->greeting p50 {arrival['arrival_ms'].get('p50')} p99 "
            f"{arrival['arrival_ms'].get('p99')} ms (POST p99 {arrival['session_post_ms'].get('p99')}, handshake p99 "
            f"{arrival['handshake_ms'].get('p99')}, auth->greeting p99 {arrival['greeting_ms'].get('p99')} ms); "
            f"bot p99 {arrival['bot_ms'].get('p99')} ms; escalation->inbox "
            f"so far p99 {arrival['escalation']['latency_ms'].get('p99')} ms, not yet seen "
            f"{arrival['escalation']['lost']}; "
            f"errors {arrival['errors'] or 0}; CPU % of a core {usage['cpu_pct_of_core']} "
            f"({stored} items stored); POST->greeting p50 by 10 s of the arrival: "
            + ", ".join(f"{w['s']} s {w['p50']:.0f}" for w in arrival["arrival_by_10s"]) + " ms")
        # 2. steps: the escalated visitors write, the team replies (a first reply assigns), new visitors keep coming
        expected = {site["id"]: len(team)}
        for rate in args.mixed_rates:
            if budget.left() < args.step_seconds + 25:
                result["skipped"] = f"time budget: steps from {rate}/s on"
                break
            visitor_rate = rate * (1 - args.reply_share - args.mixed_arrival_share)
            per_second = rate * args.mixed_arrival_share / WALK_ITEMS
            total = max(1, round(per_second * args.step_seconds))
            step = f"{stamp}-{name}-{int(rate)}"
            start_at = time.monotonic() + 0.6
            commands = arrival_commands(n, first=arrived, total=total, window=args.step_seconds, start_at=start_at,
                                        urls=server.urls, site=site, owners=owners, addresses=spread,
                                        think=args.think,
                                        tag=f"s{int(rate)}", deadline=start_at + args.step_seconds + 15)
            arrived += total
            meter = servers.CpuMeter({"server": server.pids, "worker": worker.pids, "generator": gen.pids})
            meter.start()
            reports = gen.run(step=step, rate=visitor_rate, reply_rate=rate * args.reply_share,
                              duration=args.step_seconds, extra=[{"arrivals": c} for c in commands])
            usage = meter.stop()
            for report in reports:
                escalations.add(report)
            summary = loadgen.summarize(reports, expected_per_site=expected, duration=args.step_seconds)
            samples = summary.pop("_v2a_samples")
            walk_items = sum(r["walk_acked"] for r in reports)
            arrivals = merge_arrivals([r["arrivals"] for r in reports])
            for key, value in arrivals["errors"].items():
                summary["errors"][f"arrival: {key}"] = value
            stored = summary["ack"].get("n", 0) + summary["replies_sent"] + walk_items
            summary["throughput"] = round((summary["sent"] + summary["replies_sent"] + walk_items)
                                          / args.step_seconds, 1)
            cpu_s = usage["cpu_pct_of_core"]["server"] / 100 * usage["wall_s"]
            summary.update(rate=rate, usage=usage, v2a_hist=histogram(samples), arrivals=arrivals,
                           walk_items=walk_items, stored=stored,
                           server_cpu_ms_per_message=round(1000 * cpu_s / max(1, stored), 2))
            result["steps"].append(summary)
            log(f"{name} @ {int(rate)}/s: v->a p50 {summary['v2a'].get('p50')} p99 {summary['v2a'].get('p99')} ms, "
                f"a->v p99 {summary['a2v'].get('p99')} ms, {summary['throughput']}/s ({arrivals['greeted']} new "
                f"visitors, arrival p99 {arrivals['arrival_ms'].get('p99')} ms), lost "
                f"{summary['lost']}+{summary['replies_lost']}, errors {summary['errors'] or 0}, server CPU "
                f"{usage['cpu_pct_of_core']['server']}% ({summary['server_cpu_ms_per_message']} ms/message), "
                f"machine {usage['cpu_pct_of_core']['machine_busy_pct']}%"
                + (f"; sockets closed so far {summary['closed']}" if summary["closed"] else ""))
        for report in gen.each("collect", [{"seconds": 2.0}] * n, timeout=30):
            escalations.add(report)
        result["escalation"] = escalations.summary()
        gen.close()
    finally:
        gen.shutdown()
        _drain_queue(args.redis_url)
        worker.stop()
        server.stop()
        redis_cleanup(args.redis_url, prefix)
    result["max_rate"] = sustained_rate(result["steps"])
    return result


def _drain_queue(redis_url: str, seconds: float = 20) -> None:
    """Let the worker finish the escalations' tasks (no e-mail is due: the team has them off), so nothing is left
    queued on the bench's Redis database when the worker stops."""
    import redis

    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and client.llen("celery"):
        time.sleep(0.5)
    client.close()

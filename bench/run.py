"""`make bench`: how fast the product is on this machine, beside a reference relay, in one run.

One run (bounded: every loop has a count and a deadline; everything listens on 127.0.0.1 only):
1. creates a fresh PostgreSQL database, migrates it, seeds the demo data, a bench account (live-chat-only
   sites, licensed advisors with API tokens), the load visitors, the mixed profile's site and team, and the
   archive (100k conversations and 1M messages by default) for the inbox list;
2. measures the inbox list on the archive (query count through Django's request stack, latency over HTTP) and
   the rate-limit cost per hit at limits 20, 60 and 10,000 (bench/ratecost.py);
3. for each configuration of --configs (the reference relay, uvicorn-pubsub, and the mixed profile
   uvicorn-pubsub-mixed, bench/mixed.py), connects V visitors and A advisor sockets and steps the rate: R
   messages/s in all, of which --reply-share are advisor replies (REST) and the rest visitor messages; a step
   records visitor->advisor and advisor->visitor latency, throughput, losses, errors, the CPU and memory of
   the server, the generator, Redis and PostgreSQL, and the server's CPU per message stored; the mixed profile
   first brings V new visitors in through the widget API (arrival latency, the bot walk, escalations);
4. idle: 5,000 visitor sockets on one process, with and without permessage-deflate: memory per socket and CPU;
5. as the budget allows: the relay and the best product configuration with two processes, then --late-configs
   (daphne, RedisChannelLayer);
6. writes var/bench/<stamp>/results.json, bench.png, table.txt (and var/bench/latest-*), prints the table.

    python -m bench.run [--visitors 1000] [--advisors 20] [--rates 300,600,900,1200] [--quick] ...
"""
import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

from bench import inbox, loadgen, mixed, servers

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench"
P99_LIMIT_MS = 50.0


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------------------ configuration


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.run", description="Benchmarks of the live-chat product.")
    parser.add_argument("--visitors", "-V", type=int, default=1000, help="visitor sockets under load")
    parser.add_argument("--advisors", "-A", type=int, default=20, help="advisor inbox sockets")
    parser.add_argument("--sites", type=int, default=1,
                        help="load sites; advisors and visitors are dealt over them (1: every advisor socket hears "
                             "every message, as in one support team)")
    parser.add_argument("--rates", default="25,50,100,200,300,600,900,1200",
                        help="messages/s steps (all messages, both ways), from the lowest")
    parser.add_argument("--table-rate", type=float, default=300,
                        help="the step the table reports; stepping goes on to it even past an unsustained step")
    parser.add_argument("--reply-share", type=float, default=0.1, help="share of the rate sent as advisor replies")
    parser.add_argument("--step-seconds", type=float, default=5.0)
    parser.add_argument("--configs", default="relay,uvicorn-pubsub,uvicorn-pubsub-mixed",
                        help="comma-separated: relay, {daphne,uvicorn}-{pubsub,core}, and the mixed profile "
                             "{daphne,uvicorn}-{pubsub,core}-mixed (bench/mixed.py)")
    parser.add_argument("--mixed-rates", default="25,50,100",
                        help="the mixed profile's steps, messages/s (visitor messages, bot walks, replies)")
    parser.add_argument("--arrival-seconds", type=float, default=None,
                        help="the mixed profile's first phase: --visitors new visitors arrive within it (default: "
                             "60 s per 1,000 visitors, at least 10 s: the pace of 1,000 a minute)")
    parser.add_argument("--arrival-addresses", type=int, default=50,
                        help="loopback addresses new visitors come from (127.0.100.x), each within the product's "
                             "per-address limit; 1: all from 127.0.0.1 with the limit raised")
    parser.add_argument("--mixed-processes", type=int, default=1,
                        help="web processes of the mixed profile (1: the issue's one-process figure; 2: visitors and "
                             "inbox sockets dealt over both, as a two-process deployment takes them)")
    parser.add_argument("--mixed-arrival-share", type=float, default=0.05,
                        help="share of a mixed step's rate stored by new visitors walking the bot")
    parser.add_argument("--think", type=float, default=1.0, help="a walking visitor's mean pause, seconds")
    parser.add_argument("--cpu-rate", type=float, default=100,
                        help="the step whose server CPU per stored message the table reports")
    parser.add_argument("--ratelimit-hits", type=int, default=2000,
                        help="hits timed per limit and backend for the rate-limit cost (0 to skip)")
    parser.add_argument("--late-configs", default="daphne-pubsub,uvicorn-core,daphne-core",
                        help="run after the scale-out and idle phases, as the time budget allows")
    parser.add_argument("--scale-out", type=int, default=2,
                        help="processes for the scale-out runs of the relay and the best product configuration "
                             "(0 to skip)")
    parser.add_argument("--idle-sockets", type=int, default=5000)
    parser.add_argument("--idle-servers", default="uvicorn,uvicorn-nodeflate",
                        help="idle measurement servers (uvicorn negotiates permessage-deflate, daphne cannot)")
    parser.add_argument("--archive", type=int, default=100_000, help="archive conversations for the inbox list")
    parser.add_argument("--per-conversation", type=int, default=10)
    parser.add_argument("--list-requests", type=int, default=300)
    parser.add_argument("--report-requests", type=int, default=100, help="GET /api/inbox/reports, 90 days")
    parser.add_argument("--clients", type=int, default=4, help="load generator processes")
    parser.add_argument("--budget", type=float, default=570, help="seconds; later phases are skipped past it")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 "postgres://root@127.0.0.1:5432"),
                        help="the PostgreSQL server (a fresh database is created and dropped on it)")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--quick", action="store_true",
                        help="development sizes: V=200, 10k archive, 1,000 idle sockets, two configurations")
    args = parser.parse_args(argv)
    if args.quick:
        args.visitors, args.archive, args.idle_sockets = 200, 10_000, 1000
        args.configs, args.rates, args.step_seconds = "relay,uvicorn-pubsub,uvicorn-pubsub-mixed", "100,300", 4
        args.mixed_rates = "25,100"
        args.late_configs = ""
        args.idle_servers = "uvicorn,uvicorn-nodeflate"
    args.rates = [float(r) for r in args.rates.split(",") if r]
    args.mixed_rates = [float(r) for r in args.mixed_rates.split(",") if r]
    if args.arrival_seconds is None:
        args.arrival_seconds = max(10.0, 60.0 * args.visitors / 1000)
    args.configs = [c for c in args.configs.split(",") if c]
    args.late_configs = [c for c in args.late_configs.split(",") if c]
    args.idle_servers = [s for s in args.idle_servers.split(",") if s]
    for host_url in (args.database_url, args.redis_url):
        host = host_url.split("@")[-1].split("//")[-1].split(":")[0].split("/")[0]
        if host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
            parser.error(f"loopback only: {host_url}")
    return args


class Budget:
    def __init__(self, seconds: float):
        self.start = time.monotonic()
        self.seconds = seconds

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed


# ------------------------------------------------------------------------------ database


def _pg(url: str, dbname: str = "postgres"):
    import psycopg

    return psycopg.connect(f"{url.rstrip('/')}/{dbname}", autocommit=True)


def create_database(base_url: str, name: str) -> str:
    with _pg(base_url) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{base_url.rstrip('/')}/{name}"


def drop_database(base_url: str, name: str) -> None:
    with _pg(base_url) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env: dict, *arguments: str, timeout: float = 300) -> None:
    subprocess.run([sys.executable, "manage.py", *arguments], cwd=ROOT, env=env, check=True, timeout=timeout,
                   stdout=subprocess.DEVNULL)


def reset_visitors(database_url: str, manifest: dict) -> dict[int, int]:
    """Between configurations: nobody online, and each visitor resumes after what it has seen (as the widget
    does with `after`), so a configuration does not replay the previous one's messages."""
    import psycopg

    site_ids = [s["id"] for s in manifest["sites"]]
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("UPDATE conversations_visitor SET online_sockets = 0 WHERE site_id = ANY(%s)", (site_ids,))
        rows = connection.execute("SELECT id, last_public_seq FROM conversations_conversation WHERE site_id = ANY(%s)",
                                  (site_ids,)).fetchall()
    return dict(rows)


def redis_cleanup(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    for _ in range(1000):
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))[:5000]
        if not keys:
            break
        client.delete(*keys)
    client.close()


# ------------------------------------------------------------------------------ one configuration under load


def describe(config: str) -> tuple[str, str | None]:
    if config == "relay":
        return "relay", None
    kind, layer = config.split("-")
    return kind, layer


def start(config: str, processes: int, *, env: dict, prefix: str, log_dir: Path, redis_url: str):
    kind, layer = describe(config)
    name = f"{config}x{processes}"
    if kind == "relay":
        return servers.start_relay(name, processes=processes, redis_url=redis_url, prefix=prefix, log_dir=log_dir)
    return servers.start_product(name, kind=kind, layer=layer, processes=processes,
                                 env=dict(env, CHANNEL_LAYER_PREFIX=prefix), log_dir=log_dir)


def load_config(config: str, processes: int, *, args, gen, manifest, env, database_url, stamp, budget,
                log_dir: Path, list_measure: bool) -> dict:
    kind, _ = describe(config)
    mode = "relay" if kind == "relay" else "product"
    name = f"{config}x{processes}"
    prefix = f"bench-{stamp}-{name}"
    after = reset_visitors(database_url, manifest)
    result = {"name": name, "config": config, "processes": processes, "steps": []}
    server = start(config, processes, env=env, prefix=prefix, log_dir=log_dir, redis_url=args.redis_url)
    try:
        if list_measure:
            result["inbox_list"] = measure_list(server, manifest, args)
            result["reports"] = measure_reports(server, manifest, args)
        keys = {s["id"]: s["key"] for s in manifest["sites"]}
        tokens = {a["advisor_id"]: a["token"] for a in manifest["advisors"]}
        visitors = [dict(v, site_key=keys[v["site"]], advisor_token=tokens[v["advisor"]],
                         after=after.get(v["conversation"], 0)) for v in manifest["visitors"][:args.visitors]]
        advisors = manifest["advisors"][:args.advisors]
        expected = {}
        for advisor in advisors:
            for site in advisor["site_ids"]:
                expected[site] = expected.get(site, 0) + 1
        meter = servers.CpuMeter({"server": server.pids})
        meter.start()
        connected = gen.connect(urls=server.urls, mode=mode, visitors=visitors, advisors=advisors,
                                timeout=min(150.0, max(20.0, budget.left() - 60)))
        connect_usage = meter.stop()
        result["connect"] = dict(connected, server_cpu_pct=connect_usage["cpu_pct_of_core"]["server"])
        log(f"{name}: {connected['visitors']} visitors and {connected['advisors']} advisors connected in "
            f"{connected['seconds']}s {connected['failures'] or ''}")
        time.sleep(1.0)
        idle = servers.CpuMeter({"server": server.pids})
        idle.start()
        time.sleep(1.0)
        result["rss_mb_loaded_idle"] = idle.stop()["rss_mb"]["server"]
        # A short warm-up at the lowest rate, not measured: the first messages of a fresh process pay for its
        # connection pools and caches, and once made a two-process run's first step miss its p99.
        gen.run(step=f"{stamp}-{name}-warmup", rate=args.rates[0] * (1 - args.reply_share),
                reply_rate=args.rates[0] * args.reply_share, duration=2.0)
        for rate in args.rates:
            if budget.left() < args.step_seconds + 15:
                result["skipped"] = f"time budget: steps from {rate}/s on"
                break
            step = f"{stamp}-{name}-{int(rate)}"
            meter = servers.CpuMeter({"server": server.pids, "generator": gen.pids})
            meter.start()
            reports = gen.run(step=step, rate=rate * (1 - args.reply_share), reply_rate=rate * args.reply_share,
                              duration=args.step_seconds)
            usage = meter.stop()
            summary = loadgen.summarize(reports, expected_per_site=expected, duration=args.step_seconds)
            samples = summary.pop("_v2a_samples")
            summary.update(rate=rate, usage=usage, v2a_hist=histogram(samples))
            summary["stored"] = summary["ack"].get("n", 0) + summary["replies_sent"]
            summary["server_cpu_ms_per_message"] = cpu_per_message(usage, summary["stored"])
            result["steps"].append(summary)
            log(f"{name} @ {int(rate)}/s: v->a p50 {summary['v2a'].get('p50')} p99 {summary['v2a'].get('p99')} ms, "
                f"a->v p50 {summary['a2v'].get('p50')} p99 {summary['a2v'].get('p99')} ms, "
                f"{summary['throughput']}/s, lost {summary['lost']}+{summary['replies_lost']}, "
                f"errors {summary['errors'] or 0}, server CPU {usage['cpu_pct_of_core']['server']}%, "
                f"machine {usage['cpu_pct_of_core']['machine_busy_pct']}%"
                + (f"; sockets closed so far {summary['closed']}" if summary["closed"] else "")
                + (f"; worst seconds {loadgen.worst_seconds(summary['v2a_by_second'])}"
                   if summary["v2a_by_second"] else ""))
            if not healthy(summary) and rate >= args.table_rate:
                break
        gen.close()
    finally:
        server.stop()
        redis_cleanup(args.redis_url, prefix)
    result["max_rate"] = sustained_rate(result["steps"])
    return result


def cpu_per_message(usage: dict, stored: int) -> float | None:
    """Server CPU-milliseconds per item stored in a step (its window includes the stragglers' grace)."""
    if not stored:
        return None
    return round(10 * usage["cpu_pct_of_core"]["server"] * usage["wall_s"] / stored, 2)


def scale_ratio(single: dict, double: dict) -> dict:
    """Two processes against one: the sustained rate if both sustained a step, and the acknowledged
    (stored) messages per second at the highest step each reached, which shows capacity past saturation."""
    def best_acked(run):
        return max((s["acked_per_s"] for s in run["steps"]), default=0.0)

    return {"max_rate": [single["max_rate"], double["max_rate"]],
            "max_rate_ratio": round(double["max_rate"] / single["max_rate"], 2) if single["max_rate"] else None,
            "acked_per_s": [best_acked(single), best_acked(double)],
            "acked_ratio": round(best_acked(double) / best_acked(single), 2) if best_acked(single) else None}


def sustained_rate(steps: list[dict]) -> float:
    """The highest rate of the run of sustained steps from the lowest one: the rate the configuration holds."""
    held = 0
    for step in sorted(steps, key=lambda s: s["rate"]):
        if not healthy(step):
            break
        held = step["rate"]
    return held


def healthy(step: dict) -> bool:
    """A step the configuration sustained: p99 within the limit, nothing lost, the rate achieved."""
    p99 = step["v2a"].get("p99")
    return (p99 is not None and p99 <= P99_LIMIT_MS and step["lost"] == 0 and step["replies_lost"] == 0
            and step["throughput"] >= 0.95 * step["rate"])


def histogram(samples: list[float]) -> list[int]:
    """Counts per log-spaced bucket (0.1 ms .. 10 s), for the plot."""
    edges = [0.1 * (10 ** (i / 10)) for i in range(51)]
    counts = [0] * (len(edges) + 1)
    import bisect

    for value in samples:
        counts[bisect.bisect_left(edges, value)] += 1
    return counts


# ------------------------------------------------------------------------------ inbox list


def measure_list(server, manifest: dict, args) -> dict:
    token = manifest["lister"]["token"]
    host, port = server.http[0]
    result = asyncio.run(inbox.latency(host, port, token, requests=args.list_requests, deadline_s=40))
    log(f"inbox list over HTTP ({manifest['archive'].get('conversations')} conversations): "
        f"p50 {result.get('p50')} p95 {result.get('p95')} p99 {result.get('p99')} ms")
    search = asyncio.run(inbox.search_latency(host, port, token, archive=manifest["archive"].get("conversations") or 1,
                                              requests=args.list_requests, deadline_s=40))
    log(f"inbox search over HTTP: p50 {search.get('p50')} p95 {search.get('p95')} p99 {search.get('p99')} ms "
        "(target p95 <= 50 ms)")
    return {"latency_ms": result, "search_latency_ms": search}


def measure_reports(server, manifest: dict, args) -> dict:
    """GET /api/inbox/reports over the archive's 90 days, as staff (target: p95 <= 200 ms at 100k)."""
    token = manifest["lister"]["token"]
    host, port = server.http[0]
    result = asyncio.run(inbox.latency(host, port, token, requests=args.report_requests, deadline_s=40, reports=True))
    log(f"reports over HTTP, 90 days ({manifest['archive'].get('conversations')} conversations): "
        f"p50 {result.get('p50')} p95 {result.get('p95')} p99 {result.get('p99')} ms")
    return {"latency_ms": result}


def ratelimit_cost(env: dict, hits: int, stamp: str) -> dict:
    """bench/ratecost.py in its own process, on the bench's Redis and on the local-memory cache."""
    output = subprocess.run([sys.executable, "-m", "bench.ratecost", "--hits", str(hits), "--tag", stamp], cwd=ROOT,
                            env=dict(env, CHANNEL_LAYER_PREFIX=f"bench-{stamp}-ratecost"), check=True,
                            capture_output=True, text=True, timeout=300).stdout
    result = json.loads(output.strip().splitlines()[-1])
    log("rate-limit cost per hit (p50 us, spread keys): " + ", ".join(
        f"{name} {value['spread']['p50_us']}" for name, value in result["per_limit"].items())
        + f"; flatness (10,000 over 20) {result['flatness']}")
    return result


def list_queries(env: dict, token: str, *, reports: bool = False) -> dict:
    command = [sys.executable, "-m", "bench.inbox", "--token", token, *(["--reports"] if reports else [])]
    output = subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True,
                            timeout=120).stdout
    counts = json.loads(output.strip().splitlines()[-1])
    return {"max_queries": max(c["queries"] for c in counts.values()), "per_request": counts}


# ------------------------------------------------------------------------------ idle sockets


def idle_phase(args, gen, manifest, env, database_url, stamp, budget, log_dir) -> dict:
    """N visitor sockets on one process per server, all servers at once; memory per socket and idle CPU."""
    started = []
    results = {}
    after = reset_visitors(database_url, manifest)
    keys = {s["id"]: s["key"] for s in manifest["sites"]}
    pool = [dict(v, site_key=keys[v["site"]], advisor_token="", after=after.get(v["conversation"], 0))
            for v in manifest["visitors"]]
    warm_n = 50
    try:
        for name in args.idle_servers:
            kind = name.split("-")[0]
            deflate = "nodeflate" not in name
            prefix = f"bench-{stamp}-idle-{name}"
            if kind == "relay":
                server = servers.start_relay(f"idle-{name}", processes=1, redis_url=args.redis_url, prefix=prefix,
                                             log_dir=log_dir, compression=deflate)
            else:
                server = servers.start_product(f"idle-{name}", kind=kind, layer="pubsub", processes=1,
                                               env=dict(env, CHANNEL_LAYER_PREFIX=prefix), log_dir=log_dir,
                                               deflate=deflate)
            started.append((name, server, prefix))
        n = min(args.idle_sockets, len(pool) - warm_n)
        for name, server, _ in started:  # warm every code path first, then take the baseline
            mode = "relay" if name.startswith("relay") else "product"
            gen.connect(urls=server.urls, mode=mode, visitors=pool[:warm_n], advisors=[], compression=True)
        time.sleep(1)
        base = {name: servers.rss(server.pids) for name, server, _ in started}
        timeout = max(30.0, min(300.0, budget.left() - 40))
        # every server fills at once: client process i serves server i % len(servers), with its share of sockets
        clients = len(gen.pipes)
        commands = []
        for index in range(clients):
            name, server, _ = started[index % len(started)]
            peers = [i for i in range(clients) if i % len(started) == index % len(started)]
            share = pool[warm_n:warm_n + n][peers.index(index)::len(peers)]
            # browsers offer permessage-deflate: every client offers it; the server decides
            commands.append({"url": server.urls[0], "mode": "relay" if name.startswith("relay") else "product",
                             "visitors": share, "advisors": [], "compression": True, "concurrency": 48,
                             "timeout": timeout})
        connected = {name: {"visitors": 0, "failures": {}, "seconds": 0.0} for name, _, _ in started}
        for index, result in enumerate(gen.connect_each(commands, timeout)):
            name = started[index % len(started)][0]
            connected[name]["visitors"] += result["visitors"]
            connected[name]["seconds"] = round(max(connected[name]["seconds"], result["seconds"]), 1)
            for key, value in result["failures"].items():
                connected[name]["failures"][key] = connected[name]["failures"].get(key, 0) + value
        for name, _, _ in started:
            log(f"idle {name}: {connected[name]['visitors']} sockets in {connected[name]['seconds']}s "
                f"{connected[name]['failures'] or ''}")
        time.sleep(3)
        meter = servers.CpuMeter({name: server.pids for name, server, _ in started})
        meter.start()
        time.sleep(10)
        usage = meter.stop()
        for name, server, _ in started:
            sockets = connected[name]["visitors"]
            after_rss = servers.rss(server.pids)
            results[name] = {
                "sockets": sockets + warm_n, "measured_sockets": sockets, "failures": connected[name]["failures"],
                "rss_base_mb": round(base[name] / 2 ** 20, 1), "rss_mb": round(after_rss / 2 ** 20, 1),
                "kb_per_socket": round((after_rss - base[name]) / 1024 / max(1, sockets), 1),
                "idle_cpu_pct_of_core": usage["cpu_pct_of_core"][name],
                "connect_seconds": connected[name]["seconds"],
            }
            log(f"idle {name}: {results[name]['kb_per_socket']} KB/socket, "
                f"{results[name]['idle_cpu_pct_of_core']}% of a core")
        results["_machine"] = {k: usage["cpu_pct_of_core"][k] for k in ("machine_busy_pct", "loadavg_1m")}
        gen.close()
    finally:
        for _, server, prefix in started:
            server.stop()
            redis_cleanup(args.redis_url, prefix)
    return results


# ------------------------------------------------------------------------------ report


def at_rate(run: dict, rate: float) -> dict | None:
    return next((s for s in run.get("steps", []) if s["rate"] == rate), None)


def step_for(run: dict, rate: float) -> dict | None:
    """The step a row reports: the one at `rate`, else (the mixed profile steps lower) its highest below it."""
    step = at_rate(run, rate)
    if step is None:
        below = [s for s in run.get("steps", []) if s["rate"] <= rate]
        step = max(below, key=lambda s: s["rate"], default=None)
    return step


def table(results: dict, base_rate: float) -> str:
    runs = results["runs"]
    arguments = results["args"]
    reference = {r["processes"]: r for r in runs if r["config"] == "relay"}
    lines = []
    header = (f"{'configuration':<26} {'R':>5} {'v->a p50':>9} {'p90':>7} {'p99':>8} {'max':>8} {'a->v p50':>9} "
              f"{'p99':>8} {'ack p50':>8} {'stored/s':>8} {'lost':>6} {'err':>4} {'srv CPU%':>8} {'ms/msg':>7} "
              f"{'RSS MB':>7} {'p99/ref':>8} {'max R/s':>8} {'R/ref':>6}")
    lines.append(f"At {int(base_rate)} messages/s (R: the highest step up to it where a run has none) with "
                 f"{arguments['visitors']} visitors and {arguments['advisors']} advisor sockets; max R = highest "
                 "step with v->a p99 <= 50 ms, nothing lost. Latencies in ms; lost = inbox deliveries + replies not "
                 "seen within the step's grace; stored/s = visitor messages acknowledged per second; ms/msg = "
                 "server CPU-ms per item stored.")
    lines.append(header)
    lines.append("-" * len(header))

    def fmt(value, width, digits=1):
        return f"{value:>{width}.{digits}f}" if isinstance(value, (int, float)) else f"{'-':>{width}}"

    for run in runs:
        step = step_for(run, base_rate)
        ref = reference.get(run["processes"]) or reference.get(1)
        ref_step = at_rate(ref, step["rate"]) if ref and step else None
        if step is None:
            why = run.get("skipped") or "no step at this rate"
            lines.append(f"{run['name']:<26} {'(' + why + ')':>40} max R/s {run.get('max_rate', 0):.0f}")
            continue
        v, a = step["v2a"], step["a2v"]
        reference_p99 = ref_step["v2a"].get("p99") if ref_step else None
        ratio = v.get("p99") / reference_p99 if reference_p99 and v.get("p99") else None
        rate_ratio = (run["max_rate"] / ref["max_rate"] if ref and ref.get("max_rate") and not run.get("mixed")
                      else None)  # the mixed profile is a different load: no ratio to the relay's
        errors = sum(step["errors"].values())
        lines.append(
            f"{run['name']:<26} {step['rate']:>5.0f} {fmt(v.get('p50'), 9, 2)} {fmt(v.get('p90'), 7)} "
            f"{fmt(v.get('p99'), 8)} {fmt(v.get('max'), 8)} {fmt(a.get('p50'), 9, 2)} {fmt(a.get('p99'), 8)} "
            f"{fmt(step['ack'].get('p50'), 8)} {fmt(step['acked_per_s'], 8, 0)} "
            f"{step['lost'] + step['replies_lost']:>6} {errors:>4} "
            f"{fmt(step['usage']['cpu_pct_of_core']['server'], 8, 0)} "
            f"{fmt(step.get('server_cpu_ms_per_message'), 7, 2)} {fmt(step['usage']['rss_mb']['server'], 7, 0)} "
            f"{fmt(ratio, 8, 2)} {run['max_rate']:>8.0f} {fmt(rate_ratio, 6, 2)}")
    lines.append("")
    lines += figures(results)
    scale = results.get("scale_out", {})
    for name, value in scale.items():
        lines.append(f"scale-out {name}: sustained R 1 -> 2 processes {value['max_rate']} (ratio "
                     f"{value['max_rate_ratio']}); stored+acknowledged msgs/s at the top step {value['acked_per_s']} "
                     f"(ratio {value['acked_ratio']})")
    if results.get("inbox_list"):
        il = dict(results["inbox_list"])
        il.setdefault("latency_ms", {})
        lines.append(f"inbox list ({il.get('conversations')} conversations, {il.get('messages')} messages): "
                     f"{il.get('max_queries')} queries, HTTP p50 {il['latency_ms'].get('p50')} "
                     f"p95 {il['latency_ms'].get('p95')} p99 {il['latency_ms'].get('p99')} ms")
        if il.get("search_latency_ms"):
            sl = il["search_latency_ms"]
            lines.append(f"inbox search (same archive, 50 a page): HTTP p50 {sl.get('p50')} p95 {sl.get('p95')} "
                         f"p99 {sl.get('p99')} ms (target p95 <= 50 ms)")
    if results.get("reports"):
        rp = dict(results["reports"])
        rp.setdefault("latency_ms", {})
        lines.append(f"reports, 90 days ({rp.get('conversations')} conversations): {rp.get('max_queries')} queries, "
                     f"HTTP p50 {rp['latency_ms'].get('p50')} p95 {rp['latency_ms'].get('p95')} "
                     f"p99 {rp['latency_ms'].get('p99')} ms (target p95 <= 200 ms)")
    for name, idle in (results.get("idle") or {}).items():
        if name.startswith("_"):
            continue
        lines.append(f"idle {name:<18} {idle['measured_sockets']} sockets: {idle['kb_per_socket']} KB/socket, "
                     f"{idle['idle_cpu_pct_of_core']}% of a core (RSS {idle['rss_mb']} MB)")
    return "\n".join(lines)


def figures(results: dict) -> list[str]:
    """The issue's figures of their own: the mixed profile, new visitors arriving, CPU per message, rate limit."""
    lines = []
    arguments = results["args"]
    cpu_rate = arguments.get("cpu_rate", 100)
    for run in results["runs"]:
        if not run.get("mixed") or not run.get("steps") and not run.get("arrival"):
            continue
        held = run.get("max_rate", 0)
        steps = ", ".join(f"{s['rate']:.0f}/s p50 {s['v2a'].get('p50')} p99 {s['v2a'].get('p99')} ms "
                          f"lost {s['lost'] + s['replies_lost']} err {sum(s['errors'].values())}"
                          for s in run["steps"])
        lines.append(f"mixed profile {run['name']} ({run['team']} inbox sockets, {run['bot_watchers']} seeing the "
                     f"bot's conversations): sustained {held:.0f} msg/s (target 100, v->a p99 <= 50 ms, nothing "
                     f"lost); {steps}")
        arrival = run.get("arrival")
        if arrival:
            errors = sum(arrival["errors"].values())
            detail = f" {arrival['errors']}" if errors else ""
            lines.append(
                f"  {arrival['attempted']} new visitors arriving within {arrival['window_s']:.0f} s (session + bot "
                f"greeting, from {run['arrival_addresses']} addresses, limit {run['sessions_per_address_per_minute']}"
                f"/address/min): {arrival['greeted']} greeted, errors {errors}{detail}; "
                f"POST -> greeting p50 {arrival['arrival_ms'].get('p50')} p99 {arrival['arrival_ms'].get('p99')} ms "
                f"(target: no error, p99 <= 200 ms); POST p99 {arrival['session_post_ms'].get('p99')} ms, socket "
                f"handshake p99 {arrival.get('handshake_ms', {}).get('p99')} ms, auth -> greeting p99 "
                f"{arrival.get('greeting_ms', {}).get('p99')} ms")
            lines.append(
                f"  bot walk: {arrival['escalated']} escalated; visitor frame -> bot answer p50 "
                f"{arrival['bot_ms'].get('p50')} p99 {arrival['bot_ms'].get('p99')} ms; server CPU "
                f"{arrival['server_cpu_ms_per_arrival']} ms per visitor (session, greeting, walk)")
        escalation = run.get("escalation")
        if escalation:
            split = "; ".join(
                f"{label} p50 {escalation[key]['latency_ms'].get('p50')} p99 {escalation[key]['latency_ms'].get('p99')}"
                f" ms lost {escalation[key]['lost']}"
                for key, label in (("watchers", "advisors seeing the bot's conversations"), ("others", "the others"))
                if key in escalation)
            lines.append(f"  escalation -> inbox ({escalation['escalations']} x {run['team']} sockets): p50 "
                         f"{escalation['latency_ms'].get('p50')} p99 {escalation['latency_ms'].get('p99')} ms, "
                         f"lost {escalation['lost']} ({split})")
    per_message = []
    for run in results["runs"]:
        if run["config"] == "relay" or run["processes"] != 1:
            continue
        step = step_for(run, cpu_rate)
        if step and step.get("server_cpu_ms_per_message") is not None:
            per_message.append(f"{run['name']} {step['server_cpu_ms_per_message']} ms at {step['rate']:.0f}/s")
    if per_message:
        lines.append(f"CPU per visitor message (server CPU-s / items stored, {arguments['advisors']} inbox sockets "
                     f"listening, target <= 2 ms): " + "; ".join(per_message))
    ratelimit = results.get("ratelimit")
    if ratelimit:
        parts = [f"{value['backend']} {value['limit']}: {value['spread']['p50_us']} us "
                 f"(one key {value['one_key']['p50_us']} us)" for value in ratelimit["per_limit"].values()]
        lines.append("rate-limit cost per hit, p50 (spread keys; one key past its limit): " + ", ".join(parts)
                     + f"; 10,000 over 20: {ratelimit['flatness']} (flat = 1)")
    return lines


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, grid = plt.subplots(2, 3, figsize=(17, 10))
    axes = list(grid[0]) + list(grid[1])
    ax = axes[0]
    for run in results["runs"]:
        steps = run.get("steps", [])
        if not steps:
            continue
        rates = [s["rate"] for s in steps]
        style = "--" if run["config"] == "relay" else "-"
        if any(s["v2a"].get("p99") for s in steps):
            line, = ax.plot(rates, [s["v2a"].get("p99") or float("nan") for s in steps], style, marker="o",
                            label=f"{run['name']} v->a p99")
            ax.plot(rates, [s["v2a"].get("p50") or float("nan") for s in steps], style, marker=".", alpha=0.5,
                    color=line.get_color())
        else:  # nothing reached an advisor within the step: show how late the visitor's own ack was
            ax.plot(rates, [s["ack"].get("p99") or float("nan") for s in steps], style, marker="x",
                    label=f"{run['name']} ack p99 (no v->a delivery in time)")
    ax.axhline(P99_LIMIT_MS, color="red", lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("messages/s (both ways)")
    ax.set_ylabel("latency, ms (p99 bold, p50 faint)")
    ax.set_title("Latency under load")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)

    ax = axes[1]
    runs = results["runs"]
    names = [r["name"] for r in runs]
    positions = list(range(len(runs)))
    ax.barh([p + 0.2 for p in positions], [r.get("max_rate", 0) for r in runs], height=0.4, color="#2563eb",
            label="sustained rate (p99 <= 50 ms, nothing lost)")
    ax.barh([p - 0.2 for p in positions], [max((s.get("acked_per_s", 0) for s in r.get("steps", [])), default=0)
                                            for r in runs], height=0.4, color="#f59e0b",
            label="visitor messages stored+acked/s, top step")
    ax.set_yticks(positions, names)
    ax.set_xlabel("messages/s")
    ax.set_title("Capacity")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="x")

    ax = axes[2]
    idle = {k: v for k, v in (results.get("idle") or {}).items() if not k.startswith("_")}
    if idle:
        ax.bar(list(idle), [v["kb_per_socket"] for v in idle.values()], color="#16a34a")
        for i, v in enumerate(idle.values()):
            ax.text(i, v["kb_per_socket"], f"{v['idle_cpu_pct_of_core']}% CPU", ha="center", va="bottom", fontsize=8)
        ax.axhline(40, color="red", lw=0.8, ls=":")
    ax.set_ylabel("KB per idle socket")
    ax.set_title(f"{results['args']['idle_sockets']} idle sockets, one process")
    plot_mixed(results, axes[3], axes[4])
    plot_ratelimit(results, axes[5])
    fig.suptitle(f"livechat bench {results['stamp']} — {results['args']['visitors']} visitors, "
                 f"{results['args']['advisors']} advisors, 2 cores (machine busy before: "
                 f"{results['machine_before']['busy_pct']}%)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_mixed(results: dict, ax, cpu_ax) -> None:
    """New visitors arriving (POST -> greeting), the bot's answers, escalations reaching the inbox; CPU per message."""
    bars = []
    for run in results["runs"]:
        if not run.get("mixed"):
            continue
        arrival = run.get("arrival") or {}
        for label, figures in (("arrival", arrival.get("arrival_ms")), ("bot answer", arrival.get("bot_ms")),
                               ("escalation->inbox", (run.get("escalation") or {}).get("latency_ms"))):
            if figures and figures.get("n"):
                bars.append((f"{label}\n{run['name']}", figures["p50"], figures["p99"]))
    if bars:
        positions = list(range(len(bars)))
        ax.bar([p - 0.2 for p in positions], [b[1] for b in bars], width=0.4, color="#93c5fd", label="p50")
        ax.bar([p + 0.2 for p in positions], [b[2] for b in bars], width=0.4, color="#1d4ed8", label="p99")
        ax.set_xticks(positions, [b[0] for b in bars], fontsize=7)
        ax.set_yscale("log")
        ax.set_ylim(bottom=1)
        ax.axhline(200, color="red", lw=0.8, ls=":")
        ax.legend(fontsize=7)
    ax.set_ylabel("ms (red: the arrival target, 200 ms)")
    ax.set_title(f"Mixed profile: {results['args']['visitors']} new visitors in "
                 f"{results['args'].get('arrival_seconds', 60):.0f} s")
    ax.grid(alpha=0.3, axis="y")

    runs = [r for r in results["runs"] if r["config"] != "relay" and r["processes"] == 1 and r.get("steps")]
    for run in runs:
        steps = [s for s in run["steps"] if s.get("server_cpu_ms_per_message") is not None]
        if steps:
            cpu_ax.plot([s["rate"] for s in steps], [s["server_cpu_ms_per_message"] for s in steps], marker="o",
                        ls="--" if run.get("mixed") else "-", label=run["name"])
    cpu_ax.axhline(2, color="red", lw=0.8, ls=":")
    cpu_ax.set_xlabel("messages/s")
    cpu_ax.set_ylabel("server CPU-ms per item stored (red: 2 ms)")
    cpu_ax.set_title("CPU per message")
    if runs:
        cpu_ax.legend(fontsize=7)
    cpu_ax.grid(alpha=0.3)


def plot_ratelimit(results: dict, ax) -> None:
    """Rate-limit cost per hit against the limit: flat is right."""
    per_limit = (results.get("ratelimit") or {}).get("per_limit", {})
    for backend in sorted({v["backend"] for v in per_limit.values()}):
        rows = sorted((v for v in per_limit.values() if v["backend"] == backend), key=lambda v: v["limit"])
        ax.plot([r["limit"] for r in rows], [r["spread"]["p50_us"] for r in rows], marker="o", label=f"{backend} p50")
        ax.plot([r["limit"] for r in rows], [r["spread"]["p99_us"] for r in rows], marker=".", ls=":",
                label=f"{backend} p99")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("limit (hits per window)")
    ax.set_ylabel("µs per hit")
    ax.set_title("Rate-limit cost per hit")
    if per_limit:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


# ------------------------------------------------------------------------------ main


def report(path: Path) -> int:
    """Re-render the table and the plot of a results.json."""
    results = json.loads(path.read_text())
    text = table(results, results["args"].get("table_rate", results["args"]["rates"][0]))
    (path.parent / "table.txt").write_text(text + "\n")
    plot(results, path.parent / "bench.png")
    print(text)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--report"]:
        return report(Path(argv[1]))
    args = parse_args(argv)
    budget = Budget(args.budget)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out_dir = OUT / stamp
    log_dir = out_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    psutil.cpu_percent(None)
    time.sleep(2)
    before = {"busy_pct": psutil.cpu_percent(None), "loadavg_1m": round(os.getloadavg()[0], 2)}
    if before["busy_pct"] > 25:
        log(f"WARNING: the machine is already {before['busy_pct']}% busy (load {before['loadavg_1m']}): "
            "figures will be pessimistic; rerun on a quiet machine")
    db_name = f"livechat_bench_{stamp.replace('-', '_')}"
    results = {"stamp": stamp, "args": {k: v for k, v in vars(args).items()}, "machine_before": before,
               "machine": {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2 ** 30, 1)},
               "runs": []}
    gen = None
    database_url = None
    try:
        log(f"database {db_name}: create, migrate, seed ({args.archive} archive conversations x "
            f"{args.per_conversation} messages)")
        database_url = create_database(args.database_url, db_name)
        env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=args.redis_url,
                   CHANNEL_LAYER_PREFIX=f"bench-{stamp}",
                   SESSIONS_PER_ADDRESS_PER_MINUTE="100000", DJANGO_SETTINGS_MODULE="livechat.settings",
                   UNAUTHENTICATED_SOCKETS_PER_ADDRESS="100000", LOG_LEVEL="WARNING")
        manage(env, "migrate", "--noinput", "-v", "0")
        manifest_path = out_dir / "manifest.json"
        subprocess.run([sys.executable, "-m", "bench.seed", "--out", str(manifest_path), "--sites", str(args.sites),
                        "--advisors", str(args.advisors), "--mixed-advisors", str(args.advisors),
                        "--visitors", str(max(args.visitors, args.idle_sockets + 60)),
                        "--archive", str(args.archive), "--per-conversation", str(args.per_conversation)],
                       cwd=ROOT, env=env, check=True, timeout=400)
        manifest = json.loads(manifest_path.read_text())
        results["seed_seconds"] = manifest["seed_seconds"]
        log(f"seeded in {manifest['seed_seconds']}s; elapsed {budget.elapsed:.0f}s")
        results["inbox_list"] = {"conversations": manifest["archive"].get("conversations"),
                                 "messages": manifest["archive"].get("messages_total"),
                                 **list_queries(env, manifest["lister"]["token"])}
        log(f"inbox list: at most {results['inbox_list']['max_queries']} queries per request")
        results["reports"] = {"conversations": manifest["archive"].get("conversations"),
                              **list_queries(env, manifest["lister"]["token"], reports=True)}
        log(f"reports: at most {results['reports']['max_queries']} queries per request")
        if args.ratelimit_hits:
            results["ratelimit"] = ratelimit_cost(env, args.ratelimit_hits, stamp)

        gen = loadgen.Generator(args.clients)
        first_product = next((c for c in args.configs if c != "relay" and not c.endswith("-mixed")), None)

        def run_configs(configs):
            for config in configs:
                needed = mixed.seconds_needed(args) if config.endswith("-mixed") else 60
                if budget.left() < needed:
                    log(f"skipped {config}x1: time budget")
                    results["runs"].append({"name": f"{config}x1", "config": config, "processes": 1, "steps": [],
                                            "max_rate": 0, "skipped": "time budget",
                                            "mixed": config.endswith("-mixed")})
                    continue
                if config.endswith("-mixed"):
                    results["runs"].append(mixed.run_mixed(
                        config, args=args, manifest=manifest, env=env, stamp=stamp, budget=budget, log_dir=log_dir,
                        log=log, healthy=healthy, histogram=histogram, redis_cleanup=redis_cleanup,
                        sustained_rate=sustained_rate))
                    continue
                run = load_config(config, 1, args=args, gen=gen, manifest=manifest, env=env,
                                  database_url=database_url, stamp=stamp, budget=budget, log_dir=log_dir,
                                  list_measure=config == first_product)
                if "inbox_list" in run:
                    results["inbox_list"].update(run.pop("inbox_list"))
                if "reports" in run:
                    results["reports"].update(run.pop("reports"))
                results["runs"].append(run)

        run_configs(args.configs)
        # The idle sockets' memory is one of issue 13's targets: measured before the scale-out runs, which are not.
        if args.idle_servers and budget.left() > 100:
            results["idle"] = idle_phase(args, gen, manifest, env, database_url, stamp, budget, log_dir)
        elif args.idle_servers:
            log("skipped the idle measurement: time budget")
        products = [r for r in results["runs"] if r["config"] != "relay" and r["steps"] and not r.get("mixed")]
        if args.scale_out > 1:
            best = max(products, key=lambda r: (r["max_rate"], -(at_rate(r, args.table_rate) or {"v2a": {}})["v2a"]
                                                .get("p99", 1e9)), default=None)
            results["best_single"] = best["config"] if best else None
            targets = (["relay"] if "relay" in args.configs else []) + ([best["config"]] if best else [])
            for config in targets:
                if budget.left() < 90:
                    log(f"skipped scale-out of {config}: time budget")
                    continue
                run = load_config(config, args.scale_out, args=args, gen=gen, manifest=manifest, env=env,
                                  database_url=database_url, stamp=stamp, budget=budget, log_dir=log_dir,
                                  list_measure=False)
                results["runs"].append(run)
                single = next(r for r in results["runs"] if r["config"] == config and r["processes"] == 1)
                results.setdefault("scale_out", {})[config] = scale_ratio(single, run)
        run_configs(args.late_configs)
    finally:
        if gen is not None:
            gen.shutdown()
        if database_url and not args.keep_db:
            try:
                drop_database(args.database_url, db_name)
            except Exception as error:  # reported; the figures are still written
                log(f"could not drop {db_name}: {error}")
        results["elapsed_s"] = round(budget.elapsed, 1)
        (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    text = table(results, args.table_rate)
    (out_dir / "table.txt").write_text(text + "\n")
    plot(results, out_dir / "bench.png")
    for name in ("results.json", "table.txt", "bench.png"):
        shutil.copyfile(out_dir / name, OUT / f"latest-{name}")
    print()
    print(text)
    print(f"\nwritten: {out_dir}/results.json, bench.png, table.txt (and var/bench/latest-*); "
          f"{results['elapsed_s']}s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())

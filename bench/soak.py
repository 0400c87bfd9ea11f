"""The soak (`make soak`, by hand, not in CI): ten minutes at 100 messages a second between 500 visitors and
10 advisors, on servers started for the run and stopped after it.

- Servers of its own (tests/faults/servers.py): a PostgreSQL cluster in a temporary directory, a redis-server,
  and the product's daphne processes (two by default), all on 127.0.0.1; the people from bench.seed (live-chat
  -only sites, each visitor's conversation live and assigned, so no bot speaks in the measured path).
- The load from bench.loadgen: client processes, open loop (a message leaves on schedule whatever the server
  answers), --reply-share of the messages are the assigned advisor's replies (REST), the rest visitors' messages
  (widget socket). The run is cut into steps of --step-s seconds, each checked on its own.
- Every --sample-s seconds, the resident memory of each server process and of Redis.

It passes (exit status 0) when nothing went wrong:
- no error: no error frame, no failed request, no socket closed under a client, no server process gone;
- no loss: every visitor message acknowledged and delivered once to every inbox socket of its site; every reply
  answered and delivered once to its visitor; the database holds exactly what was acknowledged;
- memory flat after warm-up: no server process grew by --flat-mib or more from the end of --warmup to the end.
It writes var/bench/soak-<time>.json (every figure and sample) and soak-<time>.png (memory over time; drawing it
needs matplotlib from requirements-bench.txt, the run itself does not).

    python -m bench.soak                                        # the full soak, about 12 minutes
    python -m bench.soak --minutes 1 --warmup 0.25              # one minute at full scale
    python -m bench.soak --minutes 1 --rate 20 --visitors 50 --advisors 4 --warmup 0.2 --step-s 20
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench import loadgen
from tests.faults.servers import PYTHON, ROOT, Daphne, Product, Servers, rss_bytes

OUT = ROOT / "var" / "bench"
MIB = 2 ** 20


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10, help="length of the traffic (default 10)")
    parser.add_argument("--rate", type=float, default=100, help="messages a second, both ways (default 100)")
    parser.add_argument("--visitors", type=int, default=500)
    parser.add_argument("--advisors", type=int, default=10)
    parser.add_argument("--sites", type=int, default=1, help="sites the people are dealt over (1: every inbox "
                                                             "socket hears every visitor message)")
    parser.add_argument("--processes", type=int, default=2, help="daphne processes (default 2)")
    parser.add_argument("--clients", type=int, default=2, help="load generator processes (default 2)")
    parser.add_argument("--reply-share", type=float, default=0.5, help="share of the rate that is advisor replies")
    parser.add_argument("--step-s", type=float, default=60, help="length of one checked step (default 60 s)")
    parser.add_argument("--grace-s", type=float, default=15, help="wait for late deliveries after a step")
    parser.add_argument("--warmup", type=float, default=2, help="minutes before memory counts (default 2)")
    parser.add_argument("--flat-mib", type=float, default=16,
                        help="growth after warm-up that fails a server process, MiB (default 16)")
    parser.add_argument("--sample-s", type=float, default=2, help="memory sampling period (default 2 s)")
    parser.add_argument("--out", type=Path, default=OUT)
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_servers(servers: Servers, args) -> tuple[Product, list[Daphne], dict]:
    cluster = servers.postgres_cluster()
    cluster.execute('CREATE DATABASE "soak"')
    redis = servers.redis()
    env = servers.product_env(database_url=cluster.url("soak"), redis_url=redis.url,
                              UNAUTHENTICATED_SOCKETS_PER_ADDRESS="100000")  # every visitor is 127.0.0.1
    product = Product(servers, env, "soak", redis=redis, postgres=cluster)
    product.manage("migrate", "--noinput", "-v", "0")
    manifest_path = servers.dir / "manifest.json"
    subprocess.run([PYTHON, "-m", "bench.seed", "--out", str(manifest_path), "--sites", str(args.sites),
                    "--advisors", str(args.advisors), "--visitors", str(args.visitors), "--archive", "0"],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    daphnes = [product.start_daphne(wait=False) for _ in range(args.processes)]
    for daphne in daphnes:
        product.wait_ready(daphne)
    return product, daphnes, json.loads(manifest_path.read_text())


class MemorySampler(threading.Thread):
    """RSS of the server processes and Redis every `period` seconds, until stopped."""

    def __init__(self, processes: dict[str, int], period: float):
        super().__init__(daemon=True)
        self.processes, self.period = processes, period
        self.samples: list[dict] = []
        self.started = time.monotonic()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            sample = {"t": round(time.monotonic() - self.started, 1)}
            for name, pid in self.processes.items():
                try:
                    sample[name] = rss_bytes(pid)
                except (OSError, RuntimeError):
                    sample[name] = None
            self.samples.append(sample)
            self.done.wait(self.period)

    def stop(self) -> list[dict]:
        self.done.set()
        self.join(10)
        return self.samples


def memory_report(samples: list[dict], warmup_s: float, flat_mib: float) -> dict:
    """Per process: memory at the end of warm-up and at the end (medians of a tenth of the samples), the growth
    between them, the least-squares slope, the peak; a server process is flat when it grew less than flat_mib."""
    report = {}
    for name in [k for k in samples[0] if k != "t"]:
        points = [(s["t"], s[name]) for s in samples if s["t"] >= warmup_s and s[name] is not None]
        if len(points) < 4:
            report[name] = {"note": "too few samples after warm-up"}
            continue
        tenth = max(1, len(points) // 10)
        start = sorted(v for _, v in points[:tenth])[tenth // 2]
        end = sorted(v for _, v in points[-tenth:])[tenth // 2]
        mean_t = sum(t for t, _ in points) / len(points)
        mean_v = sum(v for _, v in points) / len(points)
        slope = (sum((t - mean_t) * (v - mean_v) for t, v in points)
                 / max(1e-9, sum((t - mean_t) ** 2 for t, _ in points)))
        report[name] = {"after_warmup_mib": round(start / MIB, 1), "end_mib": round(end / MIB, 1),
                        "growth_mib": round((end - start) / MIB, 1), "slope_mib_per_min": round(slope * 60 / MIB, 2),
                        "peak_mib": round(max(v for _, v in points) / MIB, 1)}
        if name.startswith("daphne"):
            report[name]["flat"] = (end - start) / MIB < flat_mib
    return report


def plot(samples: list[dict], warmup_s: float, path: Path, title: str) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "not drawn: matplotlib is not installed (pip install -r requirements-bench.txt)"
    figure, axis = plt.subplots(figsize=(9, 4.5), dpi=110)
    for name in [k for k in samples[0] if k != "t"]:
        points = [(s["t"] / 60, s[name] / MIB) for s in samples if s[name] is not None]
        axis.plot([t for t, _ in points], [v for _, v in points], label=name, linewidth=1.4)
    axis.axvline(warmup_s / 60, color="grey", linestyle="--", linewidth=1, label="end of warm-up")
    axis.set_xlabel("minutes")
    axis.set_ylabel("resident memory (MiB)")
    axis.set_ylim(bottom=0)
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return str(path)


def step_problems(summary: dict) -> list[str]:
    unacked = summary["sent"] - summary["ack"]["n"]
    problems = [f"{what}: {summary[key]}" for key, what in [
        ("lost", "inbox deliveries lost"), ("duplicates", "inbox deliveries doubled"),
        ("replies_lost", "replies not delivered"), ("replies_duplicated", "replies delivered twice")]
        if summary[key]]
    if unacked:
        problems.append(f"visitor messages not acknowledged: {unacked}")
    if summary["errors"]:
        problems.append(f"errors: {summary['errors']}")
    if summary["closed"]:
        problems.append(f"sockets closed: {summary['closed']}")
    return problems


def run_traffic(args, gen: loadgen.Generator, expected: dict[int, int]) -> list[dict]:
    total = args.minutes * 60
    steps = []
    done = 0.0
    while done < total - 0.5:
        length = min(args.step_s, total - done)
        reports = gen.run(step=f"soak-{len(steps)}", rate=args.rate * (1 - args.reply_share),
                          reply_rate=args.rate * args.reply_share, duration=length, grace=args.grace_s)
        summary = loadgen.summarize(reports, expected_per_site=expected, duration=length)
        summary.pop("_v2a_samples")
        summary["problems"] = step_problems(summary)
        steps.append(summary)
        done += length
        log(f"step {len(steps)}: {summary['throughput']} msg/s, visitor->advisor p99 {summary['v2a'].get('p99')} ms, "
            f"advisor->visitor p99 {summary['a2v'].get('p99')} ms, {'; '.join(summary['problems']) or 'all well'}")
    return steps


def soak(args, product: Product, daphnes: list[Daphne], manifest: dict) -> dict:
    keys = {site["id"]: site["key"] for site in manifest["sites"]}
    tokens = {a["advisor_id"]: a["token"] for a in manifest["advisors"]}
    visitors = [dict(v, site_key=keys[v["site"]], advisor_token=tokens[v["advisor"]], after=0)
                for v in manifest["visitors"]]
    expected: dict[int, int] = {}
    for advisor in manifest["advisors"]:
        for site in advisor["site_ids"]:
            expected[site] = expected.get(site, 0) + 1
    gen = loadgen.Generator(args.clients)
    try:
        connected = gen.connect(urls=[d.ws for d in daphnes], mode="product", visitors=visitors,
                                advisors=manifest["advisors"], timeout=180, http_pool=16)
        log(f"{connected['visitors']} visitor and {connected['advisors']} inbox sockets open in "
            f"{connected['seconds']} s {connected['failures'] or ''}")
        processes = {f"daphne-{i}": d.process.pid for i, d in enumerate(daphnes)}
        sampler = MemorySampler({**processes, "redis": product.redis.process.pid}, args.sample_s)
        cpu0 = {name: cpu_seconds(pid) for name, pid in processes.items()}
        sampler.start()
        try:
            log(f"traffic: {args.rate:g} msg/s ({args.reply_share:.0%} replies) for {args.minutes:g} min")
            steps = run_traffic(args, gen, expected)
        finally:
            samples = sampler.stop()
        elapsed = samples[-1]["t"] if samples else 1.0
        cpu = {name: round(100 * (cpu_seconds(pid) - cpu0[name]) / elapsed, 1)
               for name, pid in processes.items() if os.path.exists(f"/proc/{pid}")}
        gen.close()
    finally:
        gen.shutdown()
    acknowledged = sum(s["ack"]["n"] for s in steps)
    replies = sum(s["replies_sent"] for s in steps)
    stored = product.postgres.query("soak", "SELECT count(*) FROM conversations_message "
                                            "WHERE sender IN ('visitor', 'advisor')")[0][0]
    gone = [f"daphne-{i}" for i, d in enumerate(daphnes) if not d.process.alive()]
    return {
        "connected": connected,
        "totals": {"visitor_messages": sum(s["sent"] for s in steps), "acknowledged": acknowledged,
                   "replies": replies, "stored_in_database": stored,
                   "inbox_deliveries": sum(s["deliveries"] for s in steps),
                   "throughput_per_s": round((sum(s["sent"] for s in steps) + replies) / (args.minutes * 60), 1)},
        "problems": [f"step {i + 1}: {p}" for i, s in enumerate(steps) for p in s["problems"]]
                    + ([f"database holds {stored}, acknowledged {acknowledged + replies}"]
                       if stored != acknowledged + replies else [])
                    + ([f"server processes gone: {gone}"] if gone else [])
                    + ([f"connect failures: {connected['failures']}"] if connected["failures"] else []),
        "cpu_pct_of_core": cpu,
        "memory": memory_report(samples, args.warmup * 60, args.flat_mib),
        "steps": steps,
        "samples": samples,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    servers = Servers(prefix="soak-")
    try:
        log(f"servers: a PostgreSQL cluster, Redis, {args.processes} daphne; {args.visitors} visitors and "
            f"{args.advisors} advisors seeded")
        product, daphnes, manifest = start_servers(servers, args)
        result = soak(args, product, daphnes, manifest)
        if result["problems"]:
            logs = args.out / f"soak-{stamp}-logs"
            logs.mkdir(exist_ok=True)
            for process in servers.processes:
                (logs / process.log.name).write_bytes(process.log.read_bytes()[-2_000_000:])
    finally:
        servers.close()
    memory_ok = all(m.get("flat", True) for m in result["memory"].values())
    result["passed"] = not result["problems"] and memory_ok and result["totals"]["acknowledged"] > 0
    result["config"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    title = (f"soak {stamp}: {args.rate:g} msg/s for {args.minutes:g} min, {args.visitors} visitors, "
             f"{args.advisors} advisors, {args.processes} daphne")
    result["png"] = plot(result["samples"], args.warmup * 60, args.out / f"soak-{stamp}.png", title)
    (args.out / f"soak-{stamp}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("passed", "totals", "problems", "cpu_pct_of_core", "memory", "png")},
                     indent=1))
    log(f"{'PASSED' if result['passed'] else 'FAILED'}; every figure in {args.out / f'soak-{stamp}.json'}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""Start and stop what the benchmark measures, and sample the CPU and memory of processes with psutil."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

LAYERS = {
    "pubsub": "livechat.layers.BatchingRedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_command(kind: str, port: int, *, deflate: bool = False) -> list[str]:
    """The command line of one product web process, as docker-compose would run it (production settings)."""
    if kind == "daphne":
        return [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "livechat.asgi:application"]
    if kind == "uvicorn":
        # The product's own web process (livechat/server.py): uvloop, httptools, websockets' sans-I/O protocol.
        command = [str(BIN / "python"), "-m", "livechat.server", "--host", "127.0.0.1", "--port", str(port),
                   "--log-level", "warning"]
        return command + (["--ws-per-message-deflate"] if deflate else [])
    raise ValueError(kind)


@dataclass
class Server:
    name: str
    processes: list[subprocess.Popen] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    @property
    def urls(self) -> list[str]:
        return [f"ws://127.0.0.1:{port}" for port in self.ports]

    @property
    def http(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", port) for port in self.ports]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.processes = []


def _wait_healthy(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for port, process, log in zip(server.ports, server.processes, server.logs):
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{server.name} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"{server.name} did not answer /healthz within {timeout}s:\n"
                                   f"{log.read_text()[-3000:]}")
            time.sleep(0.2)


def start_product(name: str, *, kind: str, layer: str, processes: int, env: dict, log_dir: Path,
                  deflate: bool = False) -> Server:
    """Product web processes as production runs them: without permessage-deflate (livechat/server.py). The load
    runs measured with it on until 2026-12-01, compressing every frame for every socket, which production never
    does; the idle phase still measures both (`deflate`)."""
    server = Server(name)
    environment = {**os.environ, **env, "CHANNEL_LAYER_BACKEND": LAYERS[layer], "LOG_LEVEL": "WARNING",
                   "DJANGO_SETTINGS_MODULE": "livechat.settings", "PYTHONUNBUFFERED": "1"}
    for index in range(processes):
        port = free_port()
        log = log_dir / f"{name}-{index}.log"
        handle = open(log, "w")
        server.processes.append(subprocess.Popen(server_command(kind, port, deflate=deflate), cwd=ROOT,
                                                 env=environment, stdout=handle, stderr=subprocess.STDOUT,
                                                 start_new_session=True))
        server.ports.append(port)
        server.logs.append(log)
    _wait_healthy(server)
    return server


def start_worker(name: str, *, env: dict, log_dir: Path) -> Server:
    """One Celery worker (the escalation e-mails' queue), as docker-compose runs one beside the web processes."""
    server = Server(name)
    environment = {**os.environ, **env, "DJANGO_SETTINGS_MODULE": "livechat.settings", "PYTHONUNBUFFERED": "1"}
    log = log_dir / f"{name}.log"
    handle = open(log, "w")
    command = [str(BIN / "celery"), "-A", "livechat", "worker", "-l", "warning", "--pool", "solo",
               "--without-heartbeat", "--without-gossip", "--without-mingle"]
    server.processes.append(subprocess.Popen(command, cwd=ROOT, env=environment, stdout=handle,
                                             stderr=subprocess.STDOUT, start_new_session=True))
    server.logs.append(log)
    return server


def start_relay(name: str, *, processes: int, redis_url: str, prefix: str, log_dir: Path,
                compression: bool = False) -> Server:
    """The reference relay; several processes share one port (SO_REUSEPORT), or one port each."""
    server = Server(name)
    for index in range(processes):
        port = free_port()
        log = log_dir / f"{name}-{index}.log"
        handle = open(log, "w")
        command = [sys.executable, "-m", "bench.relay", "--port", str(port), "--redis", redis_url,
                   "--prefix", prefix, "--uvloop"] + (["--compression"] if compression else [])
        server.processes.append(subprocess.Popen(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
                                                 start_new_session=True))
        server.ports.append(port)
        server.logs.append(log)
    _wait_healthy(server)
    return server


# ------------------------------------------------------------------------------ sampling


def _cpu(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
        return times.user + times.system
    except psutil.Error:
        return 0.0


def rss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            pass
    return total


def _postmaster() -> psutil.Process | None:
    for process in psutil.process_iter(["name", "ppid"]):
        if process.info["name"] in ("postgres", "postmaster") and process.info["ppid"] in (0, 1):
            return process
    candidates = [p for p in psutil.process_iter(["name"]) if p.info["name"] in ("postgres", "postmaster")]
    return min(candidates, key=lambda p: p.pid) if candidates else None


def _redis_pid() -> int | None:
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "redis-server" and any(":6379" in part for part in process.info["cmdline"] or []):
            return process.pid
    return None


class CpuMeter:
    """CPU seconds used between start() and stop() by named groups of processes, as % of one core.

    PostgreSQL: its live backends plus the children it reaped in the window (all databases on the cluster)."""

    def __init__(self, groups: dict[str, list[int]]):
        self.groups = {name: list(pids) for name, pids in groups.items()}
        redis_pid = _redis_pid()
        if redis_pid:
            self.groups["redis"] = [redis_pid]
        self.postmaster = _postmaster()

    def _postgres(self) -> dict[int, float]:
        if self.postmaster is None:
            return {}
        try:
            own = self.postmaster.cpu_times()
            seen = {-1: own.user + own.system + own.children_user + own.children_system}
            for child in self.postmaster.children():
                seen[child.pid] = _cpu(child.pid)
            return seen
        except psutil.Error:
            return {}

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.cpu0 = {name: sum(_cpu(pid) for pid in pids) for name, pids in self.groups.items()}
        self.pg0 = self._postgres()
        self.sys0 = psutil.cpu_times()
        self.rss_peak = {name: rss(pids) for name, pids in self.groups.items()}

    def sample_rss(self) -> None:
        for name, pids in self.groups.items():
            self.rss_peak[name] = max(self.rss_peak[name], rss(pids))

    def stop(self) -> dict:
        wall = time.monotonic() - self.t0
        result = {name: round(100 * (sum(_cpu(pid) for pid in pids) - self.cpu0[name]) / wall, 1)
                  for name, pids in self.groups.items()}
        pg1 = self._postgres()
        used = sum(v - self.pg0.get(pid, 0.0) for pid, v in pg1.items())
        result["postgres"] = round(100 * used / wall, 1)
        sys1 = psutil.cpu_times()
        busy = lambda t: t.user + t.system + t.nice + getattr(t, "irq", 0) + getattr(t, "softirq", 0)  # noqa: E731
        total = lambda t: busy(t) + t.idle + getattr(t, "iowait", 0)  # noqa: E731
        elapsed = max(1e-9, total(sys1) - total(self.sys0))
        result["machine_busy_pct"] = round(100 * (busy(sys1) - busy(self.sys0)) / elapsed, 1)
        result["loadavg_1m"] = round(os.getloadavg()[0], 2)
        self.sample_rss()
        return {"cpu_pct_of_core": result, "rss_mb": {k: round(v / 2 ** 20, 1) for k, v in self.rss_peak.items()},
                "wall_s": round(wall, 2)}

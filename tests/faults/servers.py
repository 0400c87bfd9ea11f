"""Private servers for the fault tests and the soak: Redis, a PostgreSQL cluster, the product's own processes.

Everything listens on 127.0.0.1 on a free port, lives under one temporary directory and is stopped by the
`Servers` that started it (each process in its own session, so a Celery worker's pool goes with it). Plain
Python, no pytest: bench/soak.py uses it too. PostgreSQL's `initdb` and `pg_ctl` refuse root, so as root they
run as the `postgres` user.
"""
import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
ORIGIN = "http://127.0.0.1:8000"  # an origin the demo sites allow


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, *, timeout: float, what: str, interval: float = 0.1, log: Path | None = None):
    """Call `check` until it returns something truthy; a ServerError naming `what` (and the log's tail) after."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if result := check():
                return result
        if time.monotonic() > deadline:
            raise ServerError(f"{what} within {timeout:.0f} s" + (f"\n--- {log}:\n{tail(log)}" if log else ""))
        time.sleep(interval)


def tail(path: Path | None, size: int = 4000) -> str:
    try:
        return Path(path).read_bytes()[-size:].decode(errors="replace")
    except OSError:
        return "(no log)"


def rss_bytes(pid: int) -> int:
    """Resident memory of one process, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise ServerError(f"no VmRSS for {pid}")


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name)]
    if not found[-1]:
        raise ServerError(f"{name} not found (PostgreSQL server binaries)")
    return found[-1]


def missing_tools() -> list[str]:
    """What this machine lacks to run the private servers (the fault tests skip, naming it)."""
    missing = [] if shutil.which("redis-server") else ["redis-server"]
    for name in ("initdb", "pg_ctl"):
        try:
            _postgres_bin(name)
        except ServerError:
            missing.append(name)
    return missing


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole session (a worker's pool included) and reap the leader."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)

    def stop(self, timeout: float = 10) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()  # what is left of the session, if anything


class Redis:
    def __init__(self, servers: "Servers"):
        self.servers = servers
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = servers.dir / f"redis-{self.port}"
        self.dir.mkdir()
        self.process: Process | None = None

    def start(self) -> "Redis":
        self.process = self.servers.spawn(
            f"redis-{self.port}",
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--maxclients", "4000"])
        wait_until(self.ping, timeout=20, what=f"redis-server on {self.port} did not answer", log=self.process.log)
        return self

    def ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    def stop(self) -> None:
        """Stopped hard (SIGKILL): what a crash or a restart looks like to the product."""
        if self.process is not None:
            self.process.kill()
            self.process = None


class Postgres:
    """A cluster of our own in a temporary directory, owned by `postgres` when we are root."""

    def __init__(self, servers: "Servers"):
        self.servers = servers
        self.port = free_port()
        self.dir = servers.dir / f"pg-{self.port}"
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.dir.mkdir()
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.dir, user=self.user)

    def _run(self, *args: str, timeout: float = 120) -> None:
        command = [*(["runuser", "-u", self.user, "--"] if self.user else []), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        if done.returncode:
            raise ServerError(f"{' '.join(args[:2])} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")

    def init(self) -> "Postgres":
        self._run(_postgres_bin("initdb"), "-D", str(self.data), "--auth=trust", "--username=postgres",
                  "--encoding=UTF8", "--locale=C", "--no-sync")
        # Tests, not production: no fsync; enough connections for two daphne processes and a worker under load.
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.dir}'\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 300\n"
                       "shared_buffers = 32MB\n")
        return self

    def start(self) -> "Postgres":
        self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(ServerError, subprocess.TimeoutExpired):
            self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(sql)

    def query(self, database: str, sql: str, params=()) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as connection:
            return connection.execute(sql, params).fetchall()


@dataclass
class Daphne:
    process: Process
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def rss(self) -> int:
        return rss_bytes(self.process.pid)

    def health(self) -> tuple[int, dict]:
        response = httpx.get(self.base + "/healthz", timeout=15)
        return response.status_code, response.json()


# The ASGI server of the web processes the tests start: production's (docker-compose.yml, the Dockerfile and
# `make run` all run uvicorn). LIVECHAT_TEST_SERVER=daphne runs them on daphne.
WEB_SERVER = os.environ.get("LIVECHAT_TEST_SERVER", "uvicorn")


def web_command(server: str, port: int) -> list[str]:
    """The command line of one web process, as docker-compose.yml runs it (uvicorn) or as daphne would."""
    if server == "uvicorn":
        return [PYTHON, "-m", "livechat.server", "--host", "127.0.0.1", "--port", str(port)]
    if server == "daphne":
        return [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "livechat.asgi:application"]
    raise ValueError(f"unknown server {server!r}")


@dataclass
class Product:
    """The product on the private servers: its database, its environment, the processes a test starts."""

    servers: "Servers"
    env: dict
    database: str
    redis: Redis | None = None
    postgres: Postgres | None = None
    daphnes: list[Daphne] = field(default_factory=list)

    def manage(self, *args: str, timeout: float = 180) -> str:
        done = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode:
            raise ServerError(f"manage.py {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
        return done.stdout

    def start_daphne(self, wait: bool = True, server: str | None = None) -> Daphne:
        """One web process of the product: `server` (WEB_SERVER unless given) with its production command line.
        (The name predates the choice of server; every web process is a `Daphne` here.)"""
        port = free_port()
        env = dict(self.env, PORT=str(port))
        process = self.servers.spawn(f"daphne-{port}", web_command(server or WEB_SERVER, port), env=env)
        daphne = Daphne(process, port)
        self.daphnes.append(daphne)
        if wait:
            self.wait_ready(daphne)
        return daphne

    def wait_ready(self, daphne: Daphne, timeout: float = 90) -> None:
        def ready():
            if not daphne.process.alive():
                raise ServerError(f"daphne exited:\n{tail(daphne.process.log)}")
            return httpx.get(daphne.base + "/healthz", timeout=5).status_code == 200

        try:
            wait_until(ready, timeout=timeout, what=f"daphne on {daphne.port} did not answer /healthz with 200",
                       interval=0.2, log=daphne.process.log)
        except ServerError as error:
            if not daphne.process.alive():
                raise ServerError(f"daphne exited:\n{tail(daphne.process.log)}") from None
            raise error

    def start_worker(self, **extra_env: str) -> Process:
        env = dict(self.env, **extra_env)
        return self.servers.spawn("celery-worker", [
            PYTHON, "-m", "celery", "-A", "livechat", "worker", "-l", "info", "--concurrency", "1",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"faults-{secrets.token_hex(3)}@%h",
        ], env=env)


class Servers:
    """Owns a temporary directory and every process started in it; `close()` stops them all, even half-started."""

    def __init__(self, prefix: str = "faults-"):
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        os.chmod(self.dir, 0o755)  # the postgres user walks into it
        self.processes: list[Process] = []
        self.postgres: list[Postgres] = []

    def spawn(self, name: str, command: list[str], env: dict | None = None) -> Process:
        log = self.dir / f"{name}-{len(self.processes)}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def redis(self) -> Redis:
        return Redis(self).start()

    def postgres_cluster(self) -> Postgres:
        cluster = Postgres(self)
        self.postgres.append(cluster)
        return cluster.init().start()

    def product_env(self, *, database_url: str, redis_url: str, **extra: str) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_SETTINGS_MODULE", "PYTEST_"))}
        env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, HOST="127.0.0.1", PORT="8000",
                   CHANNEL_LAYER_PREFIX=f"faults{secrets.token_hex(3)}", CELERY_TASK_ALWAYS_EAGER="1",
                   EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend", MEDIA_ROOT=str(self.dir / "media"),
                   PYTHONUNBUFFERED="1", LOG_LEVEL="WARNING", DEBUG="0")
        env.update(extra)
        return env

    def logs(self, size: int = 3000) -> str:
        """The tail of every log, for a failing test's message."""
        parts = [f"--- {p.name} (pid {p.pid}, {'alive' if p.alive() else 'exited'}):\n{tail(p.log, size)}"
                 for p in self.processes if p.name.startswith(("daphne", "celery"))]
        return "\n".join(parts)

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop(timeout=5)
        for cluster in self.postgres:
            cluster.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class Template:
    """A database migrated and seeded once per cluster; each test gets its own copy in a fraction of a second."""

    NAME = "livechat_template"

    def __init__(self, servers: Servers, cluster: Postgres):
        self.cluster = cluster
        self.cluster.execute(f'CREATE DATABASE "{self.NAME}"')
        product = Product(servers, servers.product_env(database_url=cluster.url(self.NAME), redis_url=""),
                          self.NAME)
        product.manage("migrate", "--noinput", "-v", "0")
        product.manage("seed_demo")

    def copy(self) -> str:
        name = f"t_{secrets.token_hex(5)}"
        self.cluster.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.NAME}"')
        return name

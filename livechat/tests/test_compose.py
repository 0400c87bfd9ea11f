"""The production shape (docker-compose.yml, .env.compose) as a file: no Docker engine runs in CI, so these read it
the way `docker compose` would and check what an operator would otherwise find out in production."""
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_SERVICES = ("migrate", "web1", "web2", "worker", "beat")
REQUIRED = ("SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "PUBLIC_URL")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error} (compose's interpolation)
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def interpolate(value: str, environment: dict[str, str]) -> str:
    """What compose makes of one value in this environment; KeyError(message) where it would refuse to start."""
    def one(match: re.Match) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        have = environment.get(name)
        if op in (":?", "?") and (have is None or (op == ":?" and have == "")):
            raise KeyError(f"{name}: {arg}")
        if op in (":-", "-") and (have is None or (op == ":-" and have == "")):
            return arg
        return have or ""
    return VARIABLE.sub(one, value)


def test_compose_never_seeds_the_demo_logins(compose):
    for name, service in compose["services"].items():
        command = service.get("command") or []
        text = command if isinstance(command, str) else shlex.join(command)
        assert "seed_demo" not in text, f"{name} runs seed_demo, whose passwords are published"


def test_compose_refuses_to_start_without_a_key_hosts_and_origins(compose):
    for name in PRODUCT_SERVICES:
        environment = compose["services"][name]["environment"]
        for variable in REQUIRED:
            with pytest.raises(KeyError, match=variable):
                interpolate(environment[variable], {})
    environment = compose["services"]["web1"]["environment"]
    given = {"SECRET_KEY": "k" * 50, "ALLOWED_HOSTS": "chat.example.com", "PUBLIC_URL": "https://chat.example.com",
             "CSRF_TRUSTED_ORIGINS": "https://chat.example.com"}
    assert {k: interpolate(v, given) for k, v in environment.items()} == dict(
        given, SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto: https")


def test_env_compose_carries_no_usable_key():
    lines = [line.strip() for line in (ROOT / ".env.compose").read_text().splitlines()]
    settings = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert "SECRET_KEY" not in settings and "DEMO_EXTRA_ORIGINS" not in settings


def test_web_ports_listen_on_loopback_unless_the_operator_says_otherwise(compose):
    published = [(name, port) for name, service in compose["services"].items() for port in service.get("ports", [])]
    assert published, "the web processes publish their ports"
    for name, port in published:
        assert interpolate(port, {}).startswith("127.0.0.1:"), f"{name} publishes {port} on every address"
        assert interpolate(port, {"BIND_ADDRESS": "0.0.0.0"}).startswith("0.0.0.0:")
    for name in ("postgres", "redis"):
        assert "ports" not in compose["services"][name]


def test_the_healthcheck_asks_with_the_public_host_name(compose):
    test = compose["services"]["web1"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    compile(test[3], "healthcheck", "exec")  # YAML folded it into valid Python
    assert "PUBLIC_URL" in test[3] and "Host" in test[3]

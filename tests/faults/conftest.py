"""Fault tests: the product's own processes on private servers that the tests break (tests/faults/servers.py).

One PostgreSQL cluster per test process holds a database migrated and seeded once; each test gets a copy, its
own redis-server and its own daphne processes, all stopped by the `servers` fixture whatever happens. The
cluster is stopped at the end of the session (and by the one test that stops it, which starts it again).
"""
import asyncio
import logging

import httpx
import pytest

from tests.faults.servers import Product, Servers, Template, missing_tools

TEST_BUDGET_S = 200  # no fault test may hang CI: each runs inside this
logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns a failure's story


def pytest_configure(config):
    config.addinivalue_line("markers", "faults: breaks real servers (tests/faults); each test starts its own")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.faults)


@pytest.fixture(scope="session")
def cluster():
    if missing := missing_tools():
        pytest.skip(f"the fault tests need {', '.join(missing)} (PostgreSQL server and Redis binaries)")
    servers = Servers(prefix="faults-pg-")
    try:
        postgres = servers.postgres_cluster()
        yield postgres, Template(servers, postgres)
    finally:
        servers.close()


@pytest.fixture
def servers(request):
    """This test's processes; their logs are printed when it fails."""
    servers = Servers()
    yield servers
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(f"\n===== server logs of {request.node.name}\n{servers.logs()}")
    servers.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report


@pytest.fixture
def product(servers, cluster):
    """make(**env) -> a Product on a fresh copy of the seeded database and a private Redis (no daphne yet)."""
    postgres, template = cluster

    def make(**env: str) -> Product:
        if not postgres.running():
            postgres.start()
        database = template.copy()
        redis = servers.redis()
        env = servers.product_env(database_url=postgres.url(database), redis_url=redis.url, **env)
        return Product(servers, env, database, redis=redis, postgres=postgres)

    return make


@pytest.fixture
async def http():
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, connect=10),
                                 limits=httpx.Limits(max_connections=50)) as client:
        yield client


def budget(seconds: float = TEST_BUDGET_S):
    return asyncio.timeout(seconds)

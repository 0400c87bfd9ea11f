"""The inbox list, search and the reports at scale: query counts through Django's full request stack (in this
process), and latency through a running server (HTTP on loopback).

    python -m bench.inbox --token TOKEN        (DATABASE_URL set): prints the query counts as JSON
    python -m bench.inbox --token TOKEN --http 127.0.0.1:8001 [--requests 600]: the list's latency over HTTP
    add --reports for GET /api/inbox/reports (90 days of the archive, staff) instead of the list
    python -m bench.inbox --token TOKEN --http 127.0.0.1:8001 --search [--archive 100000]: the search's latency
"""
import argparse
import json
import os
import time
from datetime import date, timedelta

# The requests the inbox page makes, and the ones an advisor clicks to: every box and filter, a second page.
VARIANTS = [
    "/api/inbox/conversations",
    "/api/inbox/conversations?box=closed",
    "/api/inbox/conversations?box=chatbot",
    "/api/inbox/conversations?filter=unread",
    "/api/inbox/conversations?filter=unassigned",
    "/api/inbox/conversations?filter=mine",
    "/api/inbox/conversations?box=closed&limit=100",
]




def report_variants(today: date | None = None) -> list[str]:
    """The reports a team lead asks for: 90 days (the target, p95 <= 200 ms at 100k conversations), for the
    archive site, as CSV, one advisor's; and a week."""
    today = today or date.today()
    ninety = f"/api/inbox/reports?from={today - timedelta(days=89)}&to={today}"
    return [ninety, f"{ninety}&site=bench-archive", f"{ninety}&format=csv", f"{ninety}&advisor=bench-0",
            f"/api/inbox/reports?from={today - timedelta(days=6)}&to={today}"]


def query_counts(token: str, *, reports: bool = False) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "livechat.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    counts = {}
    paths = report_variants() if reports else list(VARIANTS)
    first = client.get("/api/inbox/conversations?box=closed")
    if not reports and first.status_code == 200 and first.json().get("next"):
        paths.append(f"/api/inbox/conversations?box=closed&cursor={first.json()['next']}")
    for path in paths:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
        json_body = response.status_code == 200 and response["Content-Type"].startswith("application/json")
        counts[path] = {"status": response.status_code, "queries": len(queries),
                        "results": len(response.json().get("results", [])) if json_body else 0,
                        "sql": [q["sql"][:300] for q in queries.captured_queries]}
    return counts


async def latency(host: str, port: int, token: str, *, requests: int, deadline_s: float,
                  reports: bool = False) -> dict:
    """Sequential GETs (one advisor clicking around): latency, not throughput. Bounded by count and time."""
    from bench.loadgen import HttpPool, percentiles

    pool = HttpPool(host, port, 1)
    samples, statuses, by_path = [], {}, {}
    paths = report_variants() if reports else list(VARIANTS)
    status, body = await pool.request("GET", "/api/inbox/conversations?box=closed", token=token)
    if not reports and status == 200 and json.loads(body).get("next"):
        paths.append(f"/api/inbox/conversations?box=closed&cursor={json.loads(body)['next']}")
    for _ in range(3):  # warm: the first requests load code and plans
        await pool.request("GET", paths[0], token=token)
    end = time.monotonic() + deadline_s
    for n in range(requests):
        if time.monotonic() > end:
            break
        path = paths[n % len(paths)]
        started = time.perf_counter()
        status, _ = await pool.request("GET", path, token=token)
        elapsed_ms = (time.perf_counter() - started) * 1000
        samples.append(elapsed_ms)
        by_path.setdefault(path, []).append(elapsed_ms)
        statuses[status] = statuses.get(status, 0) + 1
    await pool.close()
    ordered = sorted(samples)
    result = percentiles(samples)
    result["p95"] = round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3) if ordered else None
    result["statuses"] = statuses
    # Per request kind too: one slow box hides in the overall percentiles.
    result["per_path"] = {path: _p50_p95(values) for path, values in by_path.items()}
    return result


def search_paths(archive: int, n: int, seed: int = 16) -> list[str]:
    """What advisors type into the search box on the bench archive (bench/seed.py): visitor names and companies
    (PRENOM "Jean<g>", SOCIETE "ACME <g mod 997>"), an order number in the items, words every item has (common:
    the walk over the newest conversations), prefixes, and words nothing has (rare: the index's hits)."""
    import random
    from urllib.parse import quote

    rng = random.Random(seed)
    makers = [
        lambda: f"jean{rng.randint(1, archive)}",
        lambda: f"acme {rng.randint(0, 996)}",
        lambda: f"order {rng.randint(1, archive)}",
        lambda: f"question {rng.randint(1, archive)}",
        lambda: rng.choice(["thanks check", "hello question", "message for you", "Thanks"]),
        lambda: rng.choice(["jean", "acm", "ord"]),
        lambda: f"zq{rng.randint(1, 10 ** 6)}",
    ]
    return [f"/api/inbox/search?q={quote(makers[i % len(makers)]())}" for i in range(n)]


async def search_latency(host: str, port: int, token: str, *, archive: int, requests: int,
                         deadline_s: float) -> dict:
    """Sequential searches (one advisor typing): latency per request, by kind of query too."""
    from bench.loadgen import HttpPool, percentiles

    pool = HttpPool(host, port, 1)
    paths = search_paths(archive, requests)
    for path in paths[:7]:  # warm: the first requests load code, plans and the index statistics
        await pool.request("GET", path, token=token)
    samples, statuses, by_kind = [], {}, {}
    end = time.monotonic() + deadline_s
    for n, path in enumerate(paths):
        if time.monotonic() > end:
            break
        started = time.perf_counter()
        status, _ = await pool.request("GET", path, token=token)
        elapsed_ms = (time.perf_counter() - started) * 1000
        samples.append(elapsed_ms)
        by_kind.setdefault(n % 7, []).append(elapsed_ms)
        statuses[status] = statuses.get(status, 0) + 1
    await pool.close()
    ordered = sorted(samples)
    result = percentiles(samples)
    result["p95"] = round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3) if ordered else None
    result["statuses"] = statuses
    kinds = ["name", "company", "order", "question", "common words", "short prefix", "nothing"]
    result["per_kind"] = {kinds[k]: _p50_p95(v) for k, v in sorted(by_kind.items())}
    return result


def _p50_p95(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"n": len(ordered), "p50": round(ordered[len(ordered) // 2], 3),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--token", required=True)
    parser.add_argument("--http", metavar="HOST:PORT", help="measure the latency against this running server")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--reports", action="store_true", help="GET /api/inbox/reports rather than the list")
    parser.add_argument("--search", action="store_true", help="measure the search instead of the list")
    parser.add_argument("--archive", type=int, default=100_000, help="archive conversations (for search terms)")
    args = parser.parse_args()
    if args.http:
        import asyncio

        host, port = args.http.rsplit(":", 1)
        if args.search:
            print(json.dumps(asyncio.run(search_latency(host, int(port), args.token, archive=args.archive,
                                                        requests=args.requests, deadline_s=120))))
        else:
            print(json.dumps(asyncio.run(latency(host, int(port), args.token, requests=args.requests,
                                                 deadline_s=120, reports=args.reports))))
    else:
        print(json.dumps(query_counts(args.token, reports=args.reports)))

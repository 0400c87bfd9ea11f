"""The cost of one rate-limit hit (`conversations.ratelimit.hit`) at limits 20, 60 and 10,000, on Redis and on the
local-memory cache: it should not depend on the limit (one round trip on Redis, one locked read and write in
memory). `python -m bench.ratecost [--hits 2000]` with REDIS_URL set; prints one JSON line.

Two patterns per limit, `--hits` hits each, timed one by one (perf_counter_ns):
- *spread*: keys taken in turn so that each stays within its limit (every hit allowed), as many visitors do;
- *one key*: every hit on one key, so past the limit the hits are refused (a flood from one sender).
Keys carry the run's prefix and expire within the window (60 s), as the product's own do."""
import argparse
import json
import os
import sys
import time

LIMITS = (20, 60, 10_000)


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "livechat.settings")
    import django

    django.setup()


def _timed(hit, keys, limit: int) -> dict:
    samples = []
    allowed = 0
    for key in keys:
        started = time.perf_counter_ns()
        wait = hit(key, limit=limit, window_s=60)
        samples.append((time.perf_counter_ns() - started) / 1000)
        allowed += wait is None
    samples.sort()
    return {"hits": len(samples), "allowed": allowed, "mean_us": round(sum(samples) / len(samples), 1),
            "p50_us": round(samples[len(samples) // 2], 1), "p99_us": round(samples[int(0.99 * len(samples))], 1)}


def measure(hits: int, tag: str) -> dict:
    from django.conf import settings
    from django.test.utils import override_settings

    from conversations import ratelimit

    backends = {"locmem": {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}}
    if "redis" in settings.CACHES["default"]["BACKEND"].lower():
        backends = {"redis": settings.CACHES, **backends}
    results = {}
    for backend, caches in backends.items():
        with override_settings(CACHES=caches):  # the module forgets its cache client on setting_changed
            for _ in range(50):  # connect, load the script
                ratelimit.hit(f"bench-ratecost:{tag}:warm", limit=1000, window_s=60)
            for limit in LIMITS:
                per_key = max(1, limit // 2)
                spread = [f"bench-ratecost:{tag}:{backend}:{limit}:s{i // per_key}" for i in range(hits)]
                one = [f"bench-ratecost:{tag}:{backend}:{limit}:one"] * hits
                results[f"{backend} {limit}"] = {"backend": backend, "limit": limit,
                                                 "spread": _timed(ratelimit.hit, spread, limit),
                                                 "one_key": _timed(ratelimit.hit, one, limit)}
    return results


def flatness(results: dict) -> dict:
    """Per backend: the highest limit's median cost over the lowest's (1.0 is flat; the median, as a busy machine
    inflates the mean)."""
    ratios = {}
    for backend in sorted({r["backend"] for r in results.values()}):
        low, high = results[f"{backend} {LIMITS[0]}"], results[f"{backend} {LIMITS[-1]}"]
        ratios[backend] = round(high["spread"]["p50_us"] / max(0.01, low["spread"]["p50_us"]), 2)
    return ratios


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=2000)
    parser.add_argument("--tag", default=str(os.getpid()))
    args = parser.parse_args(argv)
    _setup()
    results = measure(args.hits, args.tag)
    print(json.dumps({"per_limit": results, "flatness": flatness(results)}))


if __name__ == "__main__":
    main(sys.argv[1:])

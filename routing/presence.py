"""Whether an advisor has an inbox socket open, in the shared cache (Redis across web processes, local memory in
the embedded default), never in one process's memory.

Each open inbox socket refreshes its advisor's key every OFFLINE_AFTER_S / 3 seconds and once more when it
closes; the key lives OFFLINE_AFTER_S seconds, so an advisor is offline that long after the last socket closed (or
after its process died without a word)."""
import asyncio
import logging
from collections.abc import Iterable

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# What a cache that is down raises: presence is then unknown and counted as offline (nobody is routed to).
_OUTAGES = (RedisError, OSError, TimeoutError)


def offline_after_s() -> float:
    return settings.LIVECHAT.get("ADVISOR_OFFLINE_AFTER_S", 60)


def _key(advisor_id: int) -> str:
    return f"presence:advisor:{advisor_id}"


def presence_touch(advisor_id: int) -> None:
    """An inbox socket of this advisor is open now (blocking: the cache)."""
    try:
        cache.set(_key(advisor_id), 1, timeout=offline_after_s())
    except _OUTAGES as error:
        logger.warning("presence of advisor %s not kept: %s: %s", advisor_id, type(error).__name__, error)


def connected_ids(advisor_ids: Iterable[int]) -> set[int]:
    """Which of these advisors had an inbox socket open within OFFLINE_AFTER_S (one cache round trip)."""
    ids = list(advisor_ids)
    if not ids:
        return set()
    try:
        found = cache.get_many([_key(pk) for pk in ids])
    except _OUTAGES as error:
        logger.warning("presence unknown: %s: %s", type(error).__name__, error)
        return set()
    return {pk for pk in ids if _key(pk) in found}


_touch = sync_to_async(presence_touch, thread_sensitive=False)


async def keep_alive(advisor_id: int) -> None:
    """Run for as long as one inbox socket is open (a task the socket cancels when it closes)."""
    interval = max(1.0, offline_after_s() / 3)
    while True:
        await _touch(advisor_id)
        await asyncio.sleep(interval)


async def socket_closed(advisor_id: int) -> None:
    """The advisor stays online OFFLINE_AFTER_S more: a reload or a short network cut is not an absence."""
    await _touch(advisor_id)

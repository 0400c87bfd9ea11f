"""What every fault test checks at the end: the database's timeline against what the clients were told."""
import asyncio

from tests.faults.clients import Advisor, Visitor


async def wait_health(daphne, status: int, timeout: float = 60) -> tuple[int, dict]:
    """Poll /healthz until it answers `status`; returns (status, body)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            answer = await asyncio.to_thread(daphne.health)
        except Exception as error:  # a process busy recovering may not answer at once
            answer = (None, {"error": repr(error)})
        if answer[0] == status:
            return answer
        if loop.time() > deadline:
            raise AssertionError(f"/healthz did not answer {status} within {timeout} s; last: {answer}")
        await asyncio.sleep(0.3)


async def assert_nothing_lost_or_doubled(http, base: str, visitor: Visitor, advisor: Advisor,
                                         replies: list[dict]) -> list[dict]:
    """The timeline is gapless and has each client_id once; every send a client was told is stored (the visitor's
    echoes, the advisor's 200/201 answers) is there at that seq; the visitor received each visible item once."""
    history = await advisor.messages(http, base, visitor.conversation_id)
    seqs = [m["seq"] for m in history]
    assert seqs == list(range(1, len(seqs) + 1)), f"seq has gaps or repeats: {seqs}"
    client_ids = [m["client_id"] for m in history if m["client_id"]]
    assert len(client_ids) == len(set(client_ids)), "a client_id was stored twice"
    stored = {m["client_id"]: m["seq"] for m in history if m["client_id"]}
    assert not visitor.outbox, f"visitor sends never acknowledged: {list(visitor.outbox)}"
    lost = {cid: seq for cid, seq in visitor.acked.items() if stored.get(cid) != seq}
    assert not lost, f"acknowledged visitor sends not stored at their seq: {lost}"
    lost = [r["client_id"] for r in replies if stored.get(r["client_id"]) != r["seq"]]
    assert not lost, f"acknowledged replies not stored at their seq: {lost}"
    visible = [m["seq"] for m in await visitor.history(http, base)]
    assert sorted(visitor.messages) == visible, (
        f"the visitor's sockets delivered {sorted(set(visible) - set(visitor.messages))} too few and "
        f"{sorted(set(visitor.messages) - set(visible))} too many")
    assert visitor.doubles() == [], f"items delivered twice to the visitor: {visitor.doubles()}"
    return history

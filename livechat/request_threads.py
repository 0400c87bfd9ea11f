"""Each HTTP request's sync work (middleware, view) in a thread kept from one request to the next.

Django's ASGI handler runs every request inside a new asgiref ThreadSensitiveContext, and asgiref gives each such
context an executor of its own: a new thread started for the request's first sync call, and at its end a second
thread started to join the first. Starting a thread blocks the event loop until the new thread runs, which under
load means until it gets the GIL from the busy database threads: with twenty inbox sockets and ten replies a
second, the loop spent about a tenth of its time there (py-spy, wall time of the loop's thread), and every socket
of the process waited with it.

Here the request enters a context with an executor of one thread taken from a free list, and gives it back at the
end (asgiref 3.10+: the caller owns such an executor, and Django's own context inside it then changes nothing).
One request at a time per thread, as before; as many threads as requests in flight; at most IDLE_MAX kept idle.
"""
import threading
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext

IDLE_MAX = 16


class RequestThreads:
    """ASGI middleware for HTTP: wrap the Django application."""

    def __init__(self, application) -> None:
        self.application = application
        self.idle: list[ThreadPoolExecutor] = []
        self.lock = threading.Lock()  # free-list changes are on the loop; the lock keeps that true for any caller

    async def __call__(self, scope, receive, send) -> None:
        with self.lock:
            executor = self.idle.pop() if self.idle else None
        if executor is None:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.application(scope, receive, send)
        finally:
            with self.lock:
                kept = len(self.idle) < IDLE_MAX
                if kept:
                    self.idle.append(executor)
            if not kept:
                executor.shutdown(wait=False)

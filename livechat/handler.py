"""Django's ASGI handler with the middleware chain and the view entered in one trip to the request's thread."""
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


class OneTripHandler(ASGIHandler):
    """Django's own handler, in its async mode, runs the chain's sync middleware in the request's thread (a trip
    from the event loop), calls its async inner handler back on the loop (a second trip), which runs the sync view
    in that thread again (a third), and each returns the same way. Every middleware and view here is sync (but
    /healthz, which a sync chain adapts as it adapts any async view): as under WSGI, the chain here is sync from
    end to end and entered once. Each trip waits for the loop's turn, and with a thousand sockets open the loop is
    rarely idle."""

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)

"""Django's ASGI handler with a request's sync work (its start, the middleware chain and the view, its end) done in
one trip to the request's thread."""
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix, set_urlconf
from django.utils.log import log_response


class OneTripHandler(ASGIHandler):
    """Django's own handler, in its async mode, crosses from the event loop to the request's thread and back for
    each sync step: the request_started signal, the chain's sync middleware, its async inner handler (back on the
    loop), the sync view (in the thread again), and at the end the response's close (request_finished). Every
    middleware and view here is sync (but /healthz, which a sync chain adapts as it adapts any async view): as under
    WSGI, the request's whole sync work is one call, made once. Each trip waits for the loop's turn, and with a
    thousand sockets open the loop is rarely idle.

    A response that is not streamed is complete when the view returns: it is closed in that same trip, so
    request_finished runs and the database connection goes back to the pool before the response is written. A
    streamed one (a file) is closed after its last chunk, as Django does. What Django's handler adds and this
    leaves out: cancelling the response's task when the client disconnects, which could never stop a sync view."""

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        self._sync_chain = self._middleware_chain

    async def handle(self, scope, receive, send) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        try:
            response = await sync_to_async(self._respond, thread_sensitive=True)(scope, body_file)
            await self.send_response(response, send)
            if response.streaming:
                await sync_to_async(response.close, thread_sensitive=True)()
        finally:
            body_file.close()

    def _respond(self, scope, body_file) -> HttpResponseBase:
        """In the request's thread: what Django's handle, get_response_async and run_get_response do, in order."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            set_urlconf(settings.ROOT_URLCONF)
            response = self._sync_chain(request)
            response._resource_closers.append(request.close)
            if response.status_code >= 400:
                log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
            response._handler_class = self.__class__
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        if not response.streaming:
            response.close()
        return response

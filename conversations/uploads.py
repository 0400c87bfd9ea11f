"""The two upload doors (`POST /api/widget/images`, a multipart `POST …/messages` in the inbox): who sends, how
much and how often is settled before a byte of the body is parsed.

Order, in the view's `initial()`, before DRF touches `request.data`: the sender (401/403: the widget's bearer
token, the inbox's token or session), the size the client announces (413), the sender's rate limit (429). While the
body is then parsed, an upload handler stops it with 413 as soon as it passes the limit, whatever the announced
size said. Under ASGI the server and Django read the body before any view runs: livechat.bodylimit refuses an
oversized body there, from its Content-Length or as soon as the stream passes the limit."""
from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.utils.translation import gettext as _
from rest_framework import exceptions

from livechat.api import ApiError

# Room for the other fields (client_id, kind, a 4,000-character text) and the multipart framing.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def upload_body_max_bytes() -> int:
    """The largest request body an upload may have: the image's limit and its envelope."""
    return settings.LIVECHAT["IMAGE_MAX_BYTES"] + MULTIPART_OVERHEAD_BYTES


def too_large() -> ApiError:
    limit = settings.LIVECHAT["IMAGE_MAX_BYTES"] // (1024 * 1024)
    return ApiError(413, "too_large", _("The image is larger than %(limit)s MB.") % {"limit": limit})


def is_multipart(request) -> bool:
    return (request.content_type or "").split(";")[0].strip().lower() == "multipart/form-data"


class LimitedUploadHandler(FileUploadHandler):
    """First of the request's upload handlers: counts the file bytes the multipart parser reads and stops the
    upload with 413 past the limit, before the next handlers (memory, then a temporary file) store more."""

    def __init__(self, request=None, *, limit: int):
        super().__init__(request)
        self.limit = limit
        self.received = 0

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length > self.limit:
            raise too_large()

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            raise too_large()
        return raw_data  # on to the handler that keeps it

    def file_complete(self, file_size):
        return None  # the next handler builds the file


def announced_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ApiError(400, "bad_request", _("Content-Length is not a number.")) from None


class UploadGate:
    """Mixed into an APIView that takes a multipart upload. Subclasses resolve their sender in `authenticate_sender`
    (without reading the body) and say which limit a sender's uploads count against in `upload_wait`."""

    def initial(self, request, *args, **kwargs):
        upload = request.method == "POST" and is_multipart(request)
        if upload:
            # Before authentication: with a session, Django's CSRF check reads the form (`request.POST`), and the
            # handler refuses an oversized one from its Content-Length before reading it.
            request.upload_handlers.insert(0, LimitedUploadHandler(request, limit=upload_body_max_bytes()))
        super().initial(request, *args, **kwargs)
        if request.method != "OPTIONS":  # a CORS preflight carries no credentials
            self.authenticate_sender()
        if not upload:
            return
        if announced_length(request) > upload_body_max_bytes():
            raise too_large()
        if (wait := self.upload_wait()) is not None:
            raise exceptions.Throttled(wait=max(1, round(wait)), detail=_("Too many uploads; wait a little."))

    def authenticate_sender(self) -> None:
        """Resolve who sends (401/403), from the headers only."""

    def upload_wait(self) -> float | None:
        """Take a slot of the sender's upload limit: None when allowed, else the seconds to wait."""
        raise NotImplementedError

"""Refusals of the rules, with the contract's error codes. Services and selectors raise them; the edges (REST views,
socket consumers) only translate them: REST answers `{"code", "detail", "fields"?}` with `status`, a socket sends
an `error` frame with `code`."""
from enum import Enum

from django.utils.translation import gettext as _


class ErrorCode(str, Enum):
    """Every code a refusal carries. A `str` subclass: `Refused(detail, code="closed")` with a plain string still
    works, compares equal, and serializes to the bare string."""

    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    CLOSED = "closed"
    ASSIGNED = "assigned"
    TOO_LONG = "too_long"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    RATE_LIMITED = "rate_limited"
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    UNAVAILABLE = "unavailable"

    def __str__(self) -> str:
        return self.value


class Refused(Exception):
    """A request the rules refuse: carries the contract's error code and the HTTP status for REST."""

    status = 400
    code: str = ErrorCode.BAD_REQUEST

    def __init__(self, detail: str, *, code: str | None = None, status: int | None = None,
                 fields: dict | None = None, retry_after: float | None = None):
        super().__init__(detail)
        self.detail = detail
        # Plain strings from callers become the enum member when there is one, so `code` is always JSON-safe str.
        code = code or self.code
        self.code = ErrorCode(code) if code in ErrorCode._value2member_map_ else code
        self.status = status or self.status
        self.fields = fields
        self.retry_after = retry_after


class NotFound(Refused):
    """Missing, or outside the advisor's sites: the same answer, so scope never leaks."""

    status = 404
    code = ErrorCode.NOT_FOUND


class Forbidden(Refused):
    status = 403
    code = ErrorCode.FORBIDDEN


class Conflict(Refused):
    status = 409
    code = ErrorCode.CONFLICT


class RateLimited(Refused):
    """Over a rate limit: nothing was done; `retry_after` seconds until a slot frees."""

    status = 429
    code = ErrorCode.RATE_LIMITED


def refuse_nul(value: str, field: str) -> str:
    """NUL characters are a bad request wherever they come from (a text, a client_id, a query parameter):
    PostgreSQL refuses them in text, and a query that fails there reads as an outage (503, `unavailable`, which
    the widget would resend forever)."""
    if "\x00" in value:
        raise Refused(_("%(field)s must not contain NUL characters.") % {"field": field},
                      fields={field: [_("NUL characters are not allowed.")]})
    return value

"""REST error shape of the contract: {"code", "detail", "fields"?} with the HTTP status."""
from typing import Any

from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.response import Response

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(exceptions.APIException):
    """An error with an explicit contract code, e.g. ApiError(409, "closed", "The conversation is closed.")."""

    def __init__(self, status_code: int, code: str, detail: str, fields: dict | None = None):
        self.status_code = status_code
        self.code = code
        self.fields = fields
        super().__init__(detail=detail, code=code)


def error_response(status_code: int, code: str, detail: str, fields: dict | None = None) -> Response:
    body: dict[str, Any] = {"code": code, "detail": detail}
    if fields:
        body["fields"] = fields
    return Response(body, status=status_code)


def refuse_nul_in_query(request) -> None:
    """Every API's query parameters: a NUL character is a bad request (conversations.errors.refuse_nul)."""
    from conversations.errors import refuse_nul

    for name, values in request.query_params.lists():
        for value in values:
            refuse_nul(value, name)


def exception_handler(exc, context):
    from django.db import DatabaseError

    # Imported here: rest_framework.views reads the authentication classes (one of them in this module) while
    # it is imported itself.
    from rest_framework.views import exception_handler as drf_exception_handler

    from conversations.errors import Refused

    if isinstance(exc, Refused):  # a rule of a service said no: its code and status are the contract's
        response = error_response(exc.status, exc.code, exc.detail, exc.fields)
        if exc.retry_after is not None:
            response.data["retry_after"] = exc.retry_after
            response["Retry-After"] = str(int(exc.retry_after) + 1)
        return response
    if isinstance(exc, DatabaseError):  # nothing was stored; the client sends it again later
        return error_response(503, "unavailable", _("The database is unavailable; nothing was stored, try again."))
    if isinstance(exc, ApiError):
        return error_response(exc.status_code, exc.code, str(exc.detail), exc.fields)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = _CODES.get(response.status_code, "error")
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return error_response(status.HTTP_400_BAD_REQUEST, "bad_request", _("The request is not valid."), fields)
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        code = "unauthorized"
    detail = response.data.get("detail", "") if isinstance(response.data, dict) else str(response.data)
    new = error_response(response.status_code, code, str(detail))
    for header, value in response.items():
        new[header] = value
    return new


class AdvisorTokenAuthentication(TokenAuthentication):
    """DRF's `Authorization: Token …`, loading the token, its user, the user's advisor and the advisor's sites in
    one query (DRF's own class loads token and user, then the inbox asked for the advisor and its sites)."""

    def authenticate_credentials(self, key):
        from conversations.auth import token_valid
        from conversations.selectors import advisor_for_token

        token = advisor_for_token(key)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token_valid(token):  # inactive user or expired token: the same rule as the inbox socket
            raise exceptions.AuthenticationFailed("This token has expired or was revoked; ask for a new one.")
        return token.user, token

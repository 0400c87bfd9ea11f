class Refused(Exception):
    """A request the rules refuse: carries the contract's error code and the HTTP status for REST."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None, status: int | None = None,
                 fields: dict | None = None):
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.code
        self.status = status or self.status
        self.fields = fields


class NotFound(Refused):
    """Missing, or outside the advisor's sites: the same answer, so scope never leaks."""

    status = 404
    code = "not_found"


class Forbidden(Refused):
    status = 403
    code = "forbidden"


class Conflict(Refused):
    status = 409
    code = "conflict"

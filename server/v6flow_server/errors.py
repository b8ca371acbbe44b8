"""Domain errors of the server; ``api/error_handlers.py`` is the one place they become HTTP.

    ServerDomainError
    ├── BadRequestError      400: the request breaks a rule
    ├── UnauthorizedError    401: no, bad or expired credentials (also v4's 401 refusals)
    ├── ForbiddenError       403: known caller, wrong kind or missing permission
    ├── NotFoundError        404
    ├── ConflictError        409: a unique name is taken
    ├── TooManyRequestsError 429: over a rate limit (answered with ``Retry-After``)
    └── BadGatewayError      502: a service the server forwards to (Prefect) did not answer
"""

from __future__ import annotations


class ServerDomainError(Exception):
    """Root of the server's domain errors; ``msg`` is what the client reads."""

    status_code = 500

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg

    @property
    def headers(self) -> dict[str, str]:
        """Response headers that go with this error (none unless a subclass says so)."""
        return {}


class BadRequestError(ServerDomainError):
    """The request is well-formed but breaks a rule."""

    status_code = 400


class UnauthorizedError(ServerDomainError):
    """Credentials are missing, invalid or not valid for this object."""

    status_code = 401


class ForbiddenError(ServerDomainError):
    """The caller is known but may not do this."""

    status_code = 403


class NotFoundError(ServerDomainError):
    """The object does not exist (or is invisible to the caller)."""

    status_code = 404


class ConflictError(ServerDomainError):
    """A unique value is already taken."""

    status_code = 409


class TooManyRequestsError(ServerDomainError):
    """The caller sent more requests than a rate limit allows; ``retry_after`` in seconds."""

    status_code = 429

    def __init__(self, msg: str, *, retry_after: int) -> None:
        super().__init__(msg)
        self.retry_after = max(1, retry_after)

    @property
    def headers(self) -> dict[str, str]:
        """``Retry-After``: whole seconds until a request can succeed again."""
        return {"Retry-After": str(self.retry_after)}


class BadGatewayError(ServerDomainError):
    """A service the server forwards requests to (the Prefect API) could not be reached."""

    status_code = 502

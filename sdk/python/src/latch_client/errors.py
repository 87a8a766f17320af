"""The errors of the Latch SDK."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any, Literal, Mapping

SessionEndReason = Literal["logout", "invalid_grant", "revoked_elsewhere", "expired"]
"""Why a session ended: this client logged out, Latch refused to refresh it,
another process sharing the token store ended it, or tokens without a refresh
token expired."""

_CODE_FOR_STATUS = {
    400: "invalid_request", 401: "unauthorized", 403: "insufficient_permissions", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
    429: "rate_limited", 502: "unavailable", 503: "unavailable", 504: "unavailable",
}


class LatchError(Exception):
    """An error answer of Latch: its status and the fields of the Error body.

    A body that is not the Error schema still gives a LatchError, with the
    code that the status implies.
    """

    def __init__(self, status: int, body: Mapping[str, Any] | None, request_id: str = "", retry_after: float = 0.0) -> None:
        self.status = status
        self.body: dict[str, Any] = dict(body or {})
        self.code: str = str(self.body.get("error") or _CODE_FOR_STATUS.get(status, "internal"))
        self.message: str = str(self.body.get("message") or f"HTTP {status}")
        self.request_id: str = str(self.body.get("request_id") or request_id)
        self.expires_at: str | None = self.body.get("expires_at")
        self.retry_after = retry_after
        """The wait the server asked for with Retry-After, in seconds; 0 if none."""
        rid = f" (request id {self.request_id})" if self.request_id else ""
        super().__init__(f"latch: {status} {self.code}: {self.message}{rid}")


class NotLoggedInError(Exception):
    """Raised, without a request, by calls that need a session when there is none."""

    def __init__(self) -> None:
        super().__init__("latch: not logged in")


class SessionEndedError(NotLoggedInError):
    """Raised, without a request, by every call that needs the session once it
    has ended, until login or signup opens a new one. ``__cause__`` is
    Latch's refusal (a LatchError with invalid_grant), if any."""

    def __init__(self, reason: SessionEndReason, cause: BaseException | None = None) -> None:
        Exception.__init__(self, f"latch: the session has ended ({reason}); log in again")
        self.reason: SessionEndReason = reason
        self.__cause__ = cause


class RefreshBackoffError(Exception):
    """Raised instead of a refresh (or exchange) when an earlier one failed
    and its backoff has not passed, to a call whose access token has expired.
    Calls whose token is still valid are not affected. ``__cause__`` is the
    failure that started the backoff."""

    def __init__(self, retry_at: float, retry_after: float, cause: BaseException | None) -> None:
        super().__init__(f"latch: token renewal backing off for {retry_after:.3f}s after: {cause}")
        self.retry_at = retry_at
        """When the next renewal may be tried (seconds since the epoch, on the client's clock)."""
        self.retry_after = retry_after
        """retry_at less the time of the error, in seconds."""
        self.__cause__ = cause


def parse_retry_after(value: str | None, now: float | None = None) -> float:
    """Seconds to wait from a Retry-After value (delay-seconds or an HTTP date); 0 if none."""
    if not value:
        return 0.0
    v = value.strip()
    if v.isdigit():
        return float(min(int(v), 86400))
    try:
        at = email.utils.parsedate_to_datetime(v).timestamp()
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, at - (time.time() if now is None else now))


def error_from(status: int, headers: Mapping[str, str], body: bytes) -> LatchError:
    """The LatchError of a non-2xx answer."""
    parsed: Any = None
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    err_body = parsed if isinstance(parsed, dict) and isinstance(parsed.get("error"), str) else None
    return LatchError(status, err_body, headers.get("X-Request-Id", ""), parse_retry_after(headers.get("Retry-After")))

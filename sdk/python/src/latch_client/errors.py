"""The errors of the Latch SDK. Every error the client raises is a
LatchClientError: LatchError (an answer of Latch), NetworkError (no answer),
NotLoggedInError and SessionEndedError (no session, nothing sent),
RefreshBackoffError (a renewal failed recently) and StorageError (the token
store failed after Latch acted)."""

from __future__ import annotations

import email.utils
import json
import time
import typing
from typing import TYPE_CHECKING, Any, Literal, Mapping

from .models import ErrorCode

if TYPE_CHECKING:
    from .store import Tokens

SessionEndReason = Literal["logout", "invalid_grant", "revoked_elsewhere", "expired"]
"""Why a session ended: this client logged out, Latch refused to refresh it,
another process sharing the token store ended it, or tokens without a refresh
token expired."""

ERROR_CODES: frozenset[str] = frozenset(typing.get_args(ErrorCode))
"""Every code of openapi.yaml's ErrorCode (models.ErrorCode, generated)."""

_CODE_FOR_STATUS: dict[int, ErrorCode] = {
    400: "invalid_request", 401: "unauthorized", 403: "insufficient_permissions", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
    429: "rate_limited", 502: "unavailable", 503: "unavailable", 504: "unavailable",
}


class LatchClientError(Exception):
    """The base of every error latch_client raises."""


class LatchError(LatchClientError):
    """An error answer of Latch: its status and the fields of the Error body.

    ``code`` is one of openapi.yaml's error codes (``ErrorCode``). A body that
    is not the Error schema, or a code this SDK does not know yet (codes are
    only ever added), gives the code that the status implies; ``body`` keeps
    what Latch sent.
    """

    def __init__(self, status: int, body: Mapping[str, Any] | None, request_id: str = "", retry_after: float = 0.0) -> None:
        self.status = status
        self.body: dict[str, Any] = dict(body or {})
        raw = self.body.get("error")
        self.code: ErrorCode = typing.cast(ErrorCode, raw) if raw in ERROR_CODES else _CODE_FOR_STATUS.get(status, "internal")
        self.message: str = str(self.body.get("message") or f"HTTP {status}")
        self.request_id: str = str(self.body.get("request_id") or request_id)
        self.expires_at: str | None = self.body.get("expires_at")
        self.retry_after = retry_after
        """The wait the server asked for with Retry-After, in seconds; 0 if none."""
        rid = f" (request id {self.request_id})" if self.request_id else ""
        super().__init__(f"latch: {status} {raw if isinstance(raw, str) and raw else self.code}: {self.message}{rid}")

    @property
    def permanent(self) -> bool:
        """Whether sending the same request again cannot help: a 4xx other than 408 and 429."""
        return 400 <= self.status < 500 and self.status not in (408, 429)


class NetworkError(LatchClientError):
    """Latch could not be reached or did not answer in time: the connection
    was refused, reset or closed, or the timeout passed (``timeout`` is then
    True). ``__cause__`` is the underlying OSError or http.client error. The
    request may or may not have reached Latch."""

    def __init__(self, method: str, url: str, cause: BaseException) -> None:
        self.method = method
        self.url = url
        self.timeout = isinstance(cause, TimeoutError)
        what = "timed out" if self.timeout else f"failed: {type(cause).__name__}: {cause}"
        super().__init__(f"latch: {method} {url} {what}")
        self.__cause__ = cause


class StorageError(LatchClientError):
    """The token store failed. Before sign-up, sign-in and factor
    verifications the client asks the store whether a save would succeed
    (StoreCheck): when it would not, nothing is sent and ``tokens`` is None.
    When a save fails after Latch opened or renewed a session, ``tokens`` is
    that session, so it is not lost: keep them, or hand them to set_tokens
    once the store works; ``result`` is Latch's answer (for example the
    SignupSession or SignInResult). ``__cause__`` is the store's exception."""

    def __init__(self, tokens: Tokens | None, result: object, cause: BaseException) -> None:
        if tokens is None:
            what = "the token store cannot save a session, so none was opened"
        else:
            what = "Latch opened the session but the token store failed to save it (StorageError.tokens has it)"
        super().__init__(f"latch: {what}: {cause}")
        self.tokens = tokens
        self.result = result
        self.__cause__ = cause


class NotLoggedInError(LatchClientError):
    """Raised, without a request, by calls that need a session when there is none."""

    def __init__(self) -> None:
        super().__init__("latch: not logged in")


class SessionEndedError(NotLoggedInError):
    """Raised, without a request, by every call that needs the session once it
    has ended, until sign_in or sign_up opens a new one. ``__cause__`` is
    Latch's refusal (a LatchError with invalid_grant), if any."""

    def __init__(self, reason: SessionEndReason, cause: BaseException | None = None) -> None:
        Exception.__init__(self, f"latch: the session has ended ({reason}); sign in again")
        self.reason: SessionEndReason = reason
        self.__cause__ = cause


class RefreshBackoffError(LatchClientError):
    """Raised instead of a refresh (or exchange) when an earlier one failed
    with a transient error (a NetworkError, 408, 429 or 5xx) and its backoff
    has not passed, to a call whose access token has expired. Calls whose
    token is still valid are not affected. ``__cause__`` is the failure that
    started the backoff."""

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
    """The LatchError of a non-2xx answer (headers keyed in lower case)."""
    parsed: Any = None
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    err_body = parsed if isinstance(parsed, dict) and isinstance(parsed.get("error"), str) else None
    return LatchError(status, err_body, headers.get("x-request-id", ""), parse_retry_after(headers.get("retry-after")))

"""The Latch client: typed operations, tokens kept fresh, the session's end told once."""

from __future__ import annotations

import contextlib
import json
import random
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, Mapping

from . import models as m
from .api import API, OPERATIONS, Auth
from .errors import (
    LatchError, NotLoggedInError, RefreshBackoffError, SessionEndedError, SessionEndReason, error_from,
    parse_retry_after,
)
from .store import MemoryStore, TokenLocker, Tokens, TokenStore

LogoutScope = Literal["local", "others", "global"]
Event = Literal["signed_in", "token_refreshed", "signed_out"]


@dataclass(frozen=True)
class RefreshPolicy:
    """How long before expiry an access token is renewed: the shorter of
    ``before`` seconds and ``fraction`` of the token's lifetime, plus a random
    extra of up to ``jitter`` times that, drawn once per token. Within that
    margin the token is still valid: calls go ahead with it while one renewal
    runs in the background; only a call whose token has expired waits."""

    before: float = 60.0
    fraction: float = 0.2
    jitter: float = 0.1


@dataclass(frozen=True)
class RetryPolicy:
    """How 429 and 503 answers are retried: 429 for any method (the server
    did not act), 503 for idempotent methods only. The wait is the larger of
    Retry-After and an exponential backoff with jitter; a Retry-After above
    ``max_delay`` is not waited for. ``base_delay`` and ``max_delay`` also
    pace renewals after a failed refresh or exchange."""

    max_retries: int = 3
    base_delay: float = 0.25
    max_delay: float = 30.0


@dataclass(frozen=True)
class SignInResult:
    """What sign_in opened: a session (already the client's) and, when its
    user has a verified second factor, the factors that can raise it from
    aal1 to aal2 (``mfa``). Until one is verified (verify_totp,
    verify_recovery_code, verify_webauthn), operations that need aal2 raise
    LatchError ``mfa_required``."""

    tokens: m.TokenResponse
    mfa: m.MFAPending | None = None

    def has_factor(self, kind: m.MFAFactorType) -> bool:
        """Whether a pending factor is of the type (``totp``, ``webauthn``)."""
        return self.mfa is not None and any(f.type == kind for f in self.mfa.factors)


@dataclass(frozen=True)
class SignedIn:
    tokens: Tokens
    user: m.User | None


@dataclass(frozen=True)
class TokenRefreshed:
    tokens: Tokens
    adopted: bool
    """True when another process rotated them and this client adopted them."""


@dataclass(frozen=True)
class SignedOut:
    reason: SessionEndReason
    error: BaseException | None


@dataclass
class _End:
    reason: SessionEndReason
    cause: BaseException | None
    access: str | None
    refresh: str | None
    notified: bool = False


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Tokens | None = None
        self.error: BaseException | None = None


_IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}
_RETRYABLE_REFRESH = (urllib.error.URLError, ConnectionError, TimeoutError)


def _route(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")


_ROUTES = [(method, _route(path), auth) for method, path, auth in OPERATIONS.values()]


class Client:
    """Calls Latch with the session's (or an API key's) credentials, keeps
    them fresh and says when the session ends.

    ``api`` has every operation of openapi.yaml as a typed method; the methods
    of Client are shortcuts for the common flows. Calls raise LatchError,
    SessionEndedError, NotLoggedInError or RefreshBackoffError; network
    failures raise urllib.error.URLError. A Client is safe to use from many
    threads: however many need a renewal, one request goes to Latch.
    """

    def __init__(
        self,
        base_url: str,
        *,
        store: TokenStore | None = None,
        refresh_policy: RefreshPolicy = RefreshPolicy(),
        retry_policy: RetryPolicy = RetryPolicy(),
        api_key: str | None = None,
        exchange: m.ExchangeRequest | None = None,
        timeout: float = 30.0,
        refresh_timeout: float = 15.0,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.store: TokenStore = store if store is not None else MemoryStore()
        self.mode: Literal["session", "exchange"] = "exchange" if api_key else "session"
        self._api_key = api_key
        self._exchange = exchange
        self._policy = refresh_policy
        self._retry = retry_policy
        self._timeout = timeout
        self._refresh_timeout = refresh_timeout
        self._now = clock
        self._rand = rand
        self._handlers: dict[str, list[Callable[[Any], None]]] = {"signed_in": [], "token_refreshed": [], "signed_out": []}
        self._mu = threading.RLock()
        self._cur: Tokens | None = None
        self._extra = 0.0
        self._end: _End | None = None
        self._fails = 0
        self._last_err: BaseException | None = None
        self._retry_at = 0.0
        self._flight: _Flight | None = None
        self._bg_busy = False
        self.api = API(self._send_op)
        """Every operation of openapi.yaml, typed, with this client's credentials."""

    # ---- events ------------------------------------------------------------

    def on(self, event: Event, handler: Callable[[Any], None]) -> Callable[[], None]:
        """Calls handler with a SignedIn, TokenRefreshed or SignedOut; returns a function that removes it.
        signed_out fires once per session."""
        self._handlers[event].append(handler)
        return lambda: self._handlers[event].remove(handler)

    def _emit(self, event: Event, payload: Any) -> None:
        for h in list(self._handlers[event]):
            try:
                h(payload)
            except Exception:  # noqa: BLE001 - a handler's failure must not break the client
                pass

    # ---- flows ---------------------------------------------------------------

    def signup(self, email: str, password: str) -> m.SignupResult:
        """Creates an account and opens its session (a SignupSession, status
        ``session_created``), or, when Latch requires a verified email first,
        opens none (a SignupPending, status ``verification_required``)."""
        r = self.api.signup(m.Credentials(email=email, password=password))
        if isinstance(r, m.SignupSession):
            self._save_session(r)
        return r

    def login(self, email: str, password: str) -> m.TokenResponse:
        """Opens a session (LatchError invalid_credentials on a wrong password)."""
        r = self.api.login(m.Credentials(email=email, password=password))
        self._save_session(r)
        return r

    def sign_in(self, email: str, password: str) -> SignInResult:
        """Logs in like login and says whether a second factor is pending: the
        session is the client's either way (at aal1 while ``mfa`` is set)."""
        r = self.login(email, password)
        return SignInResult(r, r.mfa if r.mfa is not None and r.mfa.factors else None)

    def verify_totp(self, code: str) -> m.TokenResponse:
        """Raises this session to aal2 with a TOTP code; the new tokens replace
        the held ones as after a login. LatchError mfa_verification_failed for
        a wrong or used code, rate_limited after too many."""
        return self._verify(m.MFAVerifyRequest(method="totp", code=code))

    def verify_recovery_code(self, code: str) -> m.TokenResponse:
        """Raises this session to aal2 with a recovery code, which is spent. Errors as verify_totp."""
        return self._verify(m.MFAVerifyRequest(method="recovery_code", code=code))

    def begin_webauthn(self) -> dict[str, Any]:
        """The options (``{"publicKey": ...}``, JSON form) for
        navigator.credentials.get() that a WebAuthn second factor answers;
        then verify_webauthn. LatchError not_found when the user has no
        WebAuthn factor."""
        return self.api.begin_web_authn_verification().options

    def verify_webauthn(self, assertion: m.WebAuthnCredential) -> m.TokenResponse:
        """Raises this session to aal2 with an assertion (the PublicKeyCredential's JSON form). Errors as verify_totp."""
        return self._verify(m.MFAVerifyRequest(method="webauthn", credential=assertion))

    def factors(self) -> m.MFAFactorList:
        """The user's second factors (verified or not), the recovery codes left and this session's aal."""
        return self.api.list_mfa_factors()

    def enroll_totp(self, name: str | None = None) -> m.TOTPEnrollment:
        """Starts a TOTP enrolment: show the QR code (or the secret), then
        confirm_totp with a code from the app. LatchError mfa_required when the
        user has a factor and the session is aal1."""
        return self.api.enroll_totp(body=m.EnrollTOTPRequest(name=name))

    def confirm_totp(self, factor_id: str, code: str) -> m.MFAEnrollment:
        """Completes a TOTP enrolment; the session's new (aal2) tokens replace
        the held ones. With the account's first factor the result carries the
        recovery codes: show them once."""
        r = self.api.confirm_totp(factor_id, m.TOTPCode(code=code))
        self._save_session(r.tokens)
        return r

    def remove_factor(self, factor_id: str) -> None:
        """Removes a factor; Latch signs out the user's other sessions. LatchError mfa_required at aal1."""
        self.api.delete_mfa_factor(factor_id)

    def regenerate_recovery_codes(self) -> list[str]:
        """Replaces the recovery codes and returns the new ones. LatchError mfa_required at aal1."""
        return self.api.regenerate_recovery_codes().codes

    def _verify(self, body: m.MFAVerifyRequest) -> m.TokenResponse:
        """Posts a second factor; the upgraded session's new tokens become the client's."""
        r = self.api.verify_mfa(body)
        self._save_session(r)
        return r

    def me(self) -> m.User:
        """The user behind the credentials."""
        return self.api.get_me()

    def sessions(self) -> m.SessionList:
        """The user's sessions."""
        return self.api.list_sessions()

    def logout(self, scope: LogoutScope = "local", *, revoke_api_keys: bool = False) -> None:
        """Ends this session (local), every other one (others) or all (global).
        For local and global the session ends here too, whatever Latch answered:
        signed_out fires with reason logout and the store is cleared."""
        failure: BaseException | None = None
        try:
            self.api.logout(scope=scope, revoke_api_keys=True if revoke_api_keys else None)
        except (LatchError, NotLoggedInError, RefreshBackoffError) as e:
            failure = e
        if scope != "others":
            with self._store_lock():
                with self._mu:
                    t = self._cur
                if t is None:
                    t = self.store.load()
                if t is not None:
                    self._end_session("logout", None, t)
                self.store.clear()
            if isinstance(failure, NotLoggedInError) or (isinstance(failure, LatchError) and failure.status == 401):
                return
        if failure is not None:
            raise failure

    def refresh(self) -> Tokens:
        """Rotates the refresh token now (under the store's lock) and returns the new tokens."""
        t = self._current()
        if t is None and self.mode == "session":
            with self._mu:
                if self._end is not None:
                    raise self._ended_error()
            raise NotLoggedInError()
        return self._renew(t.access_token if t else "")

    def access_token(self) -> str:
        """A valid access token, renewed when due (for your own resource servers)."""
        return self._token().access_token

    def tokens(self) -> Tokens | None:
        """The tokens held, or None."""
        return self._current()

    def set_tokens(self, t: Tokens) -> None:
        """Opens a session with tokens obtained elsewhere."""
        with self._store_lock():
            self.store.save(t)
            with self._mu:
                self._reset_end()
                self._set(t)

    # ---- tokens ----------------------------------------------------------------

    def _set(self, t: Tokens | None) -> None:
        self._cur = t
        self._extra = self._rand() * self._policy.jitter * self._margin(t) if t is not None and self._policy.jitter > 0 else 0.0

    def _reset_end(self) -> None:
        self._end = None
        self._fails, self._last_err, self._retry_at = 0, None, 0.0

    def _margin(self, t: Tokens) -> float:
        m_ = self._policy.before
        life = t.expires_at - t.issued_at
        if t.issued_at > 0 and life > 0:
            m_ = min(m_, life * self._policy.fraction)
        return m_

    def _due(self, t: Tokens, extra: float) -> bool:
        return self._now() >= t.expires_at - self._margin(t) - extra

    def _expired(self, t: Tokens) -> bool:
        return self._now() >= t.expires_at

    @staticmethod
    def _owns(end: _End | None, t: Tokens) -> bool:
        if end is None:
            return False
        return (end.access is not None and t.access_token == end.access) or (end.refresh is not None and t.refresh_token == end.refresh)

    @contextlib.contextmanager
    def _store_lock(self) -> Iterator[None]:
        if isinstance(self.store, TokenLocker):
            with self.store.lock():
                yield
        else:
            yield

    def _from_token_response(self, r: m.TokenResponse | m.SignupSession) -> Tokens:
        now = self._now()
        return Tokens(
            access_token=r.access_token, refresh_token=r.refresh_token, issued_at=now,
            expires_at=now + r.expires_in if r.expires_in > 0 else now, session_id=r.session_id, user_id=r.user.id,
        )

    def _save_session(self, r: m.TokenResponse | m.SignupSession) -> None:
        t = self._from_token_response(r)
        with self._store_lock():
            self.store.save(t)
            with self._mu:
                self._reset_end()
                self._set(t)
        self._emit("signed_in", SignedIn(t, r.user))

    def _current(self) -> Tokens | None:
        """The tokens held; with none in session mode, the store's (another process may have logged in)."""
        with self._mu:
            if self._cur is None and self.mode == "session":
                t = self.store.load()
                if t is not None and not self._owns(self._end, t):
                    self._reset_end()
                    self._set(t)
            return self._cur

    def _ended_error(self) -> SessionEndedError:
        assert self._end is not None
        return SessionEndedError(self._end.reason, self._end.cause)

    def _token(self) -> Tokens:
        """The access token to send: a due but valid one at once (renewed in the
        background), an expired one renewed first unless renewals are blocked."""
        t = self._current()
        with self._mu:
            extra, end = self._extra, self._end
        if t is None:
            if self.mode == "exchange":
                return self._renew("")
            if end is not None:
                with self._mu:
                    raise self._ended_error()
            raise NotLoggedInError()
        if not self._due(t, extra):
            return t
        if not self._expired(t):
            if self.mode == "exchange" or t.refresh_token:
                self._renew_in_background(t.access_token)
            return t
        return self._renew(t.access_token)

    def _blocked(self) -> BaseException | None:
        with self._mu:
            if self._end is not None:
                return self._ended_error()
            now = self._now()
            if now < self._retry_at:
                return RefreshBackoffError(self._retry_at, self._retry_at - now, self._last_err)
            return None

    def _renew(self, stale: str) -> Tokens:
        b = self._blocked()
        if b is not None:
            raise b
        return self._shared(stale)

    def _shared(self, stale: str) -> Tokens:
        """One renewal at a time: callers that arrive while one runs wait for its outcome."""
        with self._mu:
            fl = self._flight
            leader = fl is None
            if fl is None:
                fl = self._flight = _Flight()
        if leader:
            try:
                fl.result = self._renew_shared(stale)
            except BaseException as e:  # noqa: BLE001 - handed to every waiter
                fl.error = e
            finally:
                with self._mu:
                    self._flight = None
                fl.done.set()
        else:
            fl.done.wait()
        if fl.error is not None:
            raise fl.error
        assert fl.result is not None
        return fl.result

    def _renew_in_background(self, stale: str) -> None:
        with self._mu:
            if self._bg_busy:
                return
        if self._blocked() is not None:
            return
        with self._mu:
            self._bg_busy = True

        def run() -> None:
            try:
                self._shared(stale)
            except Exception:  # noqa: BLE001 - remembered: the backoff or the end of the session
                pass
            finally:
                with self._mu:
                    self._bg_busy = False

        threading.Thread(target=run, name="latch-renew", daemon=True).start()

    def _renew_shared(self, stale: str) -> Tokens:
        b = self._blocked()
        if b is not None:
            raise b
        try:
            if self.mode == "exchange":
                t = self._exchange_token(stale)
            else:
                with self._store_lock():
                    t = self._refresh_locked(stale)
        except SessionEndedError:
            raise
        except Exception as e:
            raise self._back_off(e) from e
        with self._mu:
            self._fails, self._last_err, self._retry_at = 0, None, 0.0
        return t

    def _backoff(self, n: int, retry_after: float) -> float:
        b = self._retry.base_delay * float(1 << min(n, 20))
        if b <= 0 or b > self._retry.max_delay:
            b = self._retry.max_delay
        d = b / 2 + self._rand() * b / 2
        if retry_after > 0:
            d = max(d, retry_after + self._rand() * min(retry_after / 10, 1.0))
        return d

    def _back_off(self, err: Exception) -> RefreshBackoffError:
        ra = err.retry_after if isinstance(err, LatchError) else 0.0
        with self._mu:
            d = self._backoff(self._fails, ra)
            self._fails += 1
            self._last_err = err
            self._retry_at = self._now() + d
            return RefreshBackoffError(self._retry_at, d, err)

    def _end_session(self, reason: SessionEndReason, cause: BaseException | None, t: Tokens | None) -> SessionEndedError:
        """Ends the session once (the first reason stays) and fires signed_out once."""
        with self._mu:
            if self._end is None:
                self._end = _End(reason, cause, t.access_token if t else None, t.refresh_token if t else None)
            self._set(None)
            end = self._end
            notify = not end.notified
            end.notified = True
            err = self._ended_error()
        if notify:
            self._emit("signed_out", SignedOut(end.reason, end.cause))
        return err

    def _adopt(self, t: Tokens) -> None:
        with self._mu:
            if self._cur is not None and self._cur.access_token == t.access_token:
                return
            self._set(t)
        self._emit("token_refreshed", TokenRefreshed(t, True))

    def _refresh_locked(self, stale: str) -> Tokens:
        """Runs under the store's lock. Re-reads the store first: tokens there
        that are not the stale ones and not due were rotated by another
        process, and are adopted instead of spending the refresh token again."""
        latest = self.store.load()
        with self._mu:
            cur, end, extra = self._cur, self._end, self._extra
        if latest is None or self._owns(end, latest):
            raise self._end_session("revoked_elsewhere", None, cur)
        if cur is None or cur.access_token != latest.access_token:
            extra = 0.0
        if latest.access_token != stale and not self._due(latest, extra):
            self._adopt(latest)
            return latest
        if not latest.refresh_token:
            if not self._expired(latest):
                self._adopt(latest)
                return latest
            ended = self._end_session("expired", None, latest)
            self.store.clear()
            raise ended
        status, headers, body = self._post_refresh(latest.refresh_token)
        if status != 200:
            e = error_from(status, headers, body)
            if e.code != "invalid_grant":
                raise e
            ended = self._end_session("invalid_grant", e, latest)
            self.store.clear()
            raise ended
        t = self._from_token_response(m.TokenResponse.from_dict(json.loads(body)))
        with self._mu:
            self._set(t)
        self.store.save(t)
        self._emit("token_refreshed", TokenRefreshed(t, False))
        return t

    def _post_refresh(self, refresh_token: str) -> tuple[int, Mapping[str, str], bytes]:
        """Sends the refresh. A network failure is replayed once at once: the
        server may have rotated already, and within its reuse grace it answers
        the same successor again."""
        data = json.dumps({"refresh_token": refresh_token}).encode()
        headers = {"Content-Type": "application/json"}
        try:
            return self._http("POST", self.base_url + "/auth/refresh", headers, data, self._refresh_timeout)
        except _RETRYABLE_REFRESH:
            return self._http("POST", self.base_url + "/auth/refresh", headers, data, self._refresh_timeout)

    def _exchange_token(self, stale: str) -> Tokens:
        """Trades the API key for a new access token unless the current one is
        fresh. A failure leaves the current token in place until it expires."""
        with self._mu:
            cur, extra = self._cur, self._extra
        if cur is not None and cur.access_token != stale and not self._due(cur, extra):
            return cur
        assert self._api_key is not None
        body = json.dumps(self._exchange.to_dict() if self._exchange else {}).encode()
        status, headers, raw = self._http(
            "POST", self.base_url + "/auth/token",
            {"Content-Type": "application/json", "X-API-Key": self._api_key}, body, self._refresh_timeout,
        )
        if status != 200:
            raise error_from(status, headers, raw)
        r = m.ExchangeResponse.from_dict(json.loads(raw))
        now = self._now()
        t = Tokens(access_token=r.access_token, issued_at=now, expires_at=now + r.expires_in, scope=r.scope)
        with self._mu:
            self._set(t)
        self._emit("token_refreshed", TokenRefreshed(t, False))
        return t

    # ---- transport ---------------------------------------------------------------

    def _http(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float) -> tuple[int, Mapping[str, str], bytes]:
        req = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
        req.add_header("Accept", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as res:
                return res.status, {k: v for k, v in res.headers.items()}, res.read()
        except urllib.error.HTTPError as e:
            with e:
                return e.code, {k: v for k, v in e.headers.items()}, e.read()

    def _retrying(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> tuple[int, Mapping[str, str], bytes]:
        """Sends a request, retrying 429 (always) and 503 (idempotent methods)
        as RetryPolicy says. Network errors are not retried: the request may
        have reached the server."""
        attempt = 0
        while True:
            status, h, raw = self._http(method, url, headers, body, self._timeout)
            retryable = status == 429 or (status == 503 and (method in _IDEMPOTENT or "Idempotency-Key" in headers))
            if not retryable or attempt >= self._retry.max_retries:
                return status, h, raw
            ra = parse_retry_after(h.get("Retry-After"))
            if ra > self._retry.max_delay:
                return status, h, raw
            time.sleep(min(self._backoff(attempt, ra), self._retry.max_delay))
            attempt += 1

    def _send_op(self, method: str, path: str, path_params: dict[str, str], query: dict[str, Any], body: Any, auth: Auth) -> tuple[int, Any]:
        """The sender of API: adds the bearer token to operations that take one,
        and on a 401 token_expired or invalid_token renews once and retries once."""
        for name, value in path_params.items():
            path = path.replace("{" + name + "}", urllib.parse.quote(value, safe=""))
        q = {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in query.items() if v is not None}
        url = self.base_url + path + ("?" + urllib.parse.urlencode(q) if q else "")
        headers: dict[str, str] = {}
        data: bytes | None = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        if auth == "apikey" and self._api_key and path != "/auth/token":
            headers["X-API-Key"] = self._api_key
        if auth != "bearer":
            return self._result(*self._retrying(method, url, headers, data))
        tok = self._token()
        status, h, raw = self._retrying(method, url, {**headers, "Authorization": "Bearer " + tok.access_token}, data)
        if status == 401 and _code(raw, h) in ("token_expired", "invalid_token"):
            nt = self._renew(tok.access_token)
            status, h, raw = self._retrying(method, url, {**headers, "Authorization": "Bearer " + nt.access_token}, data)
        return self._result(status, h, raw)

    @staticmethod
    def _result(status: int, headers: Mapping[str, str], raw: bytes) -> tuple[int, Any]:
        if status >= 300:
            raise error_from(status, headers, raw)
        return status, (json.loads(raw) if raw else None)


def _code(raw: bytes, headers: Mapping[str, str]) -> str:
    try:
        d = json.loads(raw)
        if isinstance(d, dict) and isinstance(d.get("error"), str):
            return str(d["error"])
    except ValueError:
        pass
    return "invalid_token" if 'error="invalid_token"' in headers.get("WWW-Authenticate", "") else ""

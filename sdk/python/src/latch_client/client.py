"""The Latch client: typed operations, tokens kept fresh, the session's end told once."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import random
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, Iterator, Literal, Mapping, overload

from . import models as m
from .api import API, Auth
from .errors import (
    LatchError, NetworkError, NotLoggedInError, RefreshBackoffError, SessionEndedError, SessionEndReason, StorageError,
    error_from, parse_retry_after,
)
from .store import MemoryStore, StoreCheck, TokenLocker, Tokens, TokenStore
from .transport import Pool

LogoutScope = Literal["local", "others", "global"]
Event = Literal["initial_session", "signed_in", "token_refreshed", "signed_out"]

log = logging.getLogger("latch_client")


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
    aal1 to aal2 (``mfa``, None when no second factor is needed). Until one
    is verified (client.mfa.verify_totp, verify_recovery_code,
    verify_webauthn), operations that need aal2 raise LatchError
    ``mfa_required``."""

    tokens: m.TokenResponse
    mfa: m.MFAPending | None = None

    def has_factor(self, kind: m.MFAFactorType) -> bool:
        """Whether a pending factor is of the type (``totp``, ``webauthn``)."""
        return self.mfa is not None and any(f.type == kind for f in self.mfa.factors)


@dataclass(frozen=True)
class ProviderSignIn:
    """A sign-in with an identity provider, started by
    provider_authorize_url or sso_authorize_url: send the browser to
    ``url`` and keep
    ``verifier`` (in the user's server-side session, say) for
    exchange_code."""

    url: str
    verifier: str


@dataclass(frozen=True)
class InitialSession:
    """The payload of ``initial_session``: what the client restored from its
    store when it was made (``tokens``, None when the store held none)."""

    tokens: Tokens | None

    @property
    def found(self) -> bool:
        """Whether the store held a session."""
        return self.tokens is not None


@dataclass(frozen=True)
class SignedIn:
    """The payload of ``signed_in``: a session opened (sign-up, sign-in) or
    raised to aal2 (a verified factor), or tokens given to set_tokens."""

    tokens: Tokens
    user: m.User | None


@dataclass(frozen=True)
class TokenRefreshed:
    """The payload of ``token_refreshed``: new tokens, from a refresh or an
    API-key exchange of this client, or adopted from the store."""

    tokens: Tokens
    adopted: bool
    """True when another process rotated them and this client adopted them."""


@dataclass(frozen=True)
class SignedOut:
    """The payload of ``signed_out``, fired once per session."""

    reason: SessionEndReason
    error: BaseException | None


Payload = InitialSession | SignedIn | TokenRefreshed | SignedOut


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


class MFA:
    """The second factors of the client's user (``client.mfa``): verifying
    one to raise the session from aal1 to aal2, and managing them."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def verify_totp(self, code: str) -> m.TokenResponse:
        """Raises this session to aal2 with a TOTP code; the new tokens replace
        the held ones as after a sign-in. LatchError mfa_verification_failed
        for a wrong or used code, rate_limited after too many."""
        return self._c._verify(m.MFAVerifyRequest(method="totp", code=code))

    def verify_recovery_code(self, code: str) -> m.TokenResponse:
        """Raises this session to aal2 with a recovery code, which is spent. Errors as verify_totp."""
        return self._c._verify(m.MFAVerifyRequest(method="recovery_code", code=code))

    def begin_webauthn(self) -> dict[str, Any]:
        """The options (``{"publicKey": ...}``, JSON form) for
        navigator.credentials.get() that a WebAuthn second factor answers;
        then verify_webauthn. LatchError not_found when the user has no
        WebAuthn factor."""
        return self._c.api.begin_web_authn_verification().options

    def verify_webauthn(self, assertion: m.WebAuthnCredential) -> m.TokenResponse:
        """Raises this session to aal2 with an assertion (the PublicKeyCredential's JSON form). Errors as verify_totp."""
        return self._c._verify(m.MFAVerifyRequest(method="webauthn", credential=assertion))

    def factors(self) -> m.MFAFactorList:
        """The user's second factors (verified or not), the recovery codes left and this session's aal."""
        return self._c.api.list_mfa_factors()

    def enroll_totp(self, name: str | None = None) -> m.TOTPEnrollment:
        """Starts a TOTP enrolment: show the QR code (or the secret), then
        confirm_totp with a code from the app, promptly and from this same
        session. LatchError mfa_required when the user has a factor and the
        session is aal1."""
        return self._c.api.enroll_totp(body=m.EnrollTOTPRequest(name=name))

    def confirm_totp(self, factor_id: str, code: str) -> m.MFAEnrollment:
        """Completes a TOTP enrolment; the session's new (aal2) tokens replace
        the held ones. With the account's first factor the result carries the
        recovery codes: show them once."""
        self._c._check_store()
        r = self._c.api.confirm_totp(factor_id, m.TOTPCode(code=code))
        self._c._save_session(r.tokens, r)
        return r

    def remove_factor(self, factor_id: str) -> None:
        """Removes a factor; Latch signs out the user's other sessions. LatchError mfa_required at aal1."""
        self._c.api.delete_mfa_factor(factor_id)

    def regenerate_recovery_codes(self) -> list[str]:
        """Replaces the recovery codes and returns the new ones. LatchError mfa_required at aal1."""
        return self._c.api.regenerate_recovery_codes().codes


class Client:
    """Calls Latch with the session's (or an API key's) credentials, keeps
    them fresh and says when the session ends.

    ``api`` has every operation of openapi.yaml as a typed method; the methods
    of Client (and ``mfa``) are shortcuts for the common flows. Every error
    is a LatchClientError: LatchError (Latch's answer), NetworkError (no
    answer within ``timeout``), NotLoggedInError, SessionEndedError,
    RefreshBackoffError or StorageError. A Client is safe to use from many
    threads: however many need a renewal, one request goes to Latch, and
    connections are kept alive and reused (at most one per calling thread).
    ``close()`` (or ``with Client(...) as c:``) closes them.

    At construction the client restores the session its store holds; each
    ``initial_session`` handler is told what was found when it is added.
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
        self._pool = Pool(self.base_url)
        self._api_key = api_key
        self._exchange = exchange
        self._policy = refresh_policy
        self._retry = retry_policy
        self._timeout = timeout
        self._refresh_timeout = refresh_timeout
        self._now = clock
        self._rand = rand
        self._handlers: dict[Event, list[Callable[[Any], None]]] = {
            "initial_session": [], "signed_in": [], "token_refreshed": [], "signed_out": [],
        }
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
        self.mfa = MFA(self)
        """Second factors: verify one after sign_in, enrol and remove them."""
        restored = self.store.load() if self.mode == "session" else None
        self._set(restored)
        self._initial = InitialSession(restored)

    def close(self) -> None:
        """Closes the client's connections. Requests made after it raise RuntimeError."""
        self._pool.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # ---- events ------------------------------------------------------------

    @overload
    def on(self, event: Literal["initial_session"], handler: Callable[[InitialSession], None]) -> Callable[[], None]: ...

    @overload
    def on(self, event: Literal["signed_in"], handler: Callable[[SignedIn], None]) -> Callable[[], None]: ...

    @overload
    def on(self, event: Literal["token_refreshed"], handler: Callable[[TokenRefreshed], None]) -> Callable[[], None]: ...

    @overload
    def on(self, event: Literal["signed_out"], handler: Callable[[SignedOut], None]) -> Callable[[], None]: ...

    def on(self, event: Event, handler: Callable[[Any], None]) -> Callable[[], None]:
        """Adds a handler of event and returns a function that removes it.

        ``initial_session`` handlers are called at once, before on returns,
        with what the client restored from its store at construction
        (InitialSession; ``found`` says whether there was a session): add
        one first and it is the first event that handler sees. Then
        ``signed_in`` (SignedIn), ``token_refreshed`` (TokenRefreshed) and
        ``signed_out`` (SignedOut, once per session) as they happen. A
        handler that raises is reported to the ``latch_client`` logger
        (logging.exception) and does not disturb the client or the other
        handlers."""
        if event not in self._handlers:
            raise ValueError(f"latch: unknown event {event!r}")
        self._handlers[event].append(handler)
        if event == "initial_session":
            self._call(event, handler, self._initial)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._handlers[event].remove(handler)

        return remove

    def _emit(self, event: Event, payload: Payload) -> None:
        for h in list(self._handlers[event]):
            self._call(event, h, payload)

    @staticmethod
    def _call(event: Event, handler: Callable[[Any], None], payload: Payload) -> None:
        try:
            handler(payload)
        except Exception:  # reported, not raised: a handler's failure must not break the client
            log.exception("latch_client: a %s handler raised", event)

    # ---- flows ---------------------------------------------------------------

    def sign_up(self, email: str, password: str) -> m.SignupResult:
        """Creates an account and opens its session (a SignupSession, status
        ``session_created``), or, when Latch requires a verified email first,
        opens none (a SignupPending, status ``verification_required``).
        StorageError when the store cannot save: before the request when it
        can tell (nothing was sent), else after, carrying the session."""
        self._check_store()
        r = self.api.signup(m.Credentials(email=email, password=password))
        if isinstance(r, m.SignupSession):
            self._save_session(r, r)
        return r

    def sign_in(self, email: str, password: str) -> SignInResult:
        """Opens a session (LatchError invalid_credentials on a wrong
        password) and says whether a second factor is pending: the session is
        the client's either way (at aal1 while ``mfa`` is set; then
        client.mfa.verify_*). StorageError as sign_up."""
        self._check_store()
        return self._signed_in(self.api.login(m.Credentials(email=email, password=password)))

    def sign_in_with_otp(self, email: str, *, create_user: bool | None = None, redirect_to: str | None = None) -> None:
        """Asks Latch to mail a sign-in link and a 6-digit code, which
        verify_otp takes. It returns the same whether or not an account has
        the address (nothing is mailed to an unknown one unless
        ``create_user``, which creates the account on verification).
        ``redirect_to`` is the page the link opens, with ``token`` added to
        its query; it must be listed in LATCH_OTP_REDIRECT_URLS (LatchError
        invalid_request otherwise). LatchError rate_limited per address and
        per IP."""
        self.api.sign_in_with_otp(m.OTPRequest(email=email, create_user=create_user, redirect_to=redirect_to))

    def verify_otp(self, *, email: str | None = None, code: str | None = None, token: str | None = None) -> SignInResult:
        """Opens a session with the mailed ``code`` (with ``email``) or the
        link's ``token``, exactly as sign_in does (``mfa`` set when a second
        factor is pending). LatchError invalid_token for a wrong, used or
        expired code or link (five wrong codes end the mail's challenge),
        invalid_request unless exactly one of the two forms is given.
        StorageError as sign_up."""
        self._check_store()
        return self._signed_in(self.api.verify_otp(m.OTPVerifyRequest(email=email, code=code, token=token)))

    def _signed_in(self, r: m.TokenResponse) -> SignInResult:
        """Makes a new session the client's and says what it waits for."""
        out = SignInResult(r, r.mfa if r.mfa is not None and r.mfa.factors else None)
        self._save_session(r, out)
        return out

    def provider_authorize_url(self, provider: str, redirect_to: str) -> ProviderSignIn:
        """Starts a sign-in with a provider configured at Latch (Google,
        GitHub, ...): makes a PKCE verifier and returns Latch's authorize URL
        with its S256 challenge. Latch sends the browser on to the provider
        and back to ``redirect_to`` (one of Latch's LATCH_REDIRECT_URLS) with
        ``?code=`` (or ``?error=``: docs/providers.md), where exchange_code
        finishes."""
        return self._sign_in_url(f"/auth/providers/{urllib.parse.quote(provider, safe='')}/authorize", {"redirect_to": redirect_to})

    def sso_authorize_url(self, email: str, redirect_to: str) -> ProviderSignIn:
        """Starts an enterprise SSO sign-in: Latch finds the organization
        that verified the domain of ``email`` and sends the browser to that
        organization's identity provider (docs/sso.md). The rest is as
        provider_authorize_url: send the browser to ``url``, keep
        ``verifier``, and finish with exchange_code. Latch answers the
        browser 404 sso_not_configured when no organization signs in that
        domain."""
        return self._sign_in_url("/auth/sso", {"email": email, "redirect_to": redirect_to})

    def _sign_in_url(self, path: str, params: dict[str, str]) -> ProviderSignIn:
        """Makes a PKCE verifier; Latch's URL at path with params and its S256 challenge."""
        verifier = secrets.token_urlsafe(32)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        q = urllib.parse.urlencode({**params, "code_challenge": challenge, "code_challenge_method": "S256"})
        return ProviderSignIn(f"{self.base_url}{path}?{q}", verifier)

    def exchange_code(self, code: str, verifier: str) -> SignInResult:
        """Finishes a provider sign-in: exchanges the one-time code that came
        back to redirect_to (single use, 60 seconds) with the verifier of
        provider_authorize_url; the session becomes the client's, as
        sign_in's does. LatchError invalid_grant for a used, expired or
        foreign code or another verifier. StorageError as sign_up."""
        self._check_store()
        body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code, "code_verifier": verifier}).encode()
        status, h, raw = self._retrying("POST", "/auth/token", {"Content-Type": "application/x-www-form-urlencoded"}, body)
        if status != 200:
            raise error_from(status, h, raw)
        r = m.TokenResponse.from_dict(json.loads(raw))
        out = SignInResult(r, r.mfa if r.mfa is not None and r.mfa.factors else None)
        self._save_session(r, out)
        return out

    def _verify(self, body: m.MFAVerifyRequest) -> m.TokenResponse:
        """Posts a second factor; the upgraded session's new tokens become the client's."""
        self._check_store()
        r = self.api.verify_mfa(body)
        self._save_session(r, r)
        return r

    def me(self) -> m.User:
        """The user behind the credentials."""
        return self.api.get_me()

    def sessions(self) -> m.SessionList:
        """The user's sessions."""
        return self.api.list_sessions()

    def revoke_session(self, session_id: str) -> None:
        """Ends one of the user's sessions (LatchError not_found if it is not theirs)."""
        self.api.revoke_session(session_id)

    def create_api_key(self, label: str, scopes: list[m.Scope], *, expires_at: str | None = None) -> m.APIKeyWithSecret:
        """Creates a personal API key with those scopes (``token:exchange`` to
        trade it for access tokens) and returns it with its secret, shown once."""
        return self.api.create_api_key(m.CreateAPIKeyRequest(label=label, scopes=scopes, expires_at=expires_at))

    def logout(self, scope: LogoutScope = "local", *, revoke_api_keys: bool = False) -> None:
        """Ends this session (local), every other one (others) or all (global).
        For local and global the session ends here too, whatever Latch answered:
        signed_out fires with reason logout and the store is cleared."""
        failure: BaseException | None = None
        try:
            self.api.logout(scope=scope, revoke_api_keys=True if revoke_api_keys else None)
        except (LatchError, NetworkError, NotLoggedInError, RefreshBackoffError) as e:
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
        """Opens a session with tokens obtained elsewhere (or those a
        StorageError carries): saves them, then holds them; signed_in fires."""
        with self._store_lock():
            self.store.save(t)
            with self._mu:
                self._reset_end()
                self._set(t)
        self._emit("signed_in", SignedIn(t, None))

    # ---- tokens ----------------------------------------------------------------

    def _check_store(self) -> None:
        """StorageError (nothing sent yet) when the store says a save would fail."""
        if isinstance(self.store, StoreCheck):
            try:
                self.store.check()
            except OSError as e:
                raise StorageError(None, None, e) from e

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

    def _save_session(self, r: m.TokenResponse | m.SignupSession, result: object) -> None:
        """Saves the session Latch opened, then holds it. When the store fails
        the session is not the client's: StorageError carries it (and result)."""
        t = self._from_token_response(r)
        try:
            with self._store_lock():
                self.store.save(t)
                with self._mu:
                    self._reset_end()
                    self._set(t)
        except Exception as e:
            raise StorageError(t, result, e) from e
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
            except StorageError:
                log.exception("latch_client: a background refresh could not save the new tokens (held in memory)")
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
        except (SessionEndedError, StorageError):
            raise
        except LatchError as e:
            if e.permanent:  # a 4xx other than 408 and 429: trying again cannot help
                raise
            raise self._back_off(e) from e
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
        try:
            self.store.save(t)
        except Exception as e:
            raise StorageError(t, None, e) from e
        self._emit("token_refreshed", TokenRefreshed(t, False))
        return t

    def _post_refresh(self, refresh_token: str) -> tuple[int, Mapping[str, str], bytes]:
        """Sends the refresh. A network failure is replayed once at once: the
        server may have rotated already, and within its reuse grace it answers
        the same successor again."""
        data = json.dumps({"refresh_token": refresh_token}).encode()
        headers = {"Content-Type": "application/json"}
        try:
            return self._http("POST", "/auth/refresh", headers, data, self._refresh_timeout)
        except NetworkError:
            return self._http("POST", "/auth/refresh", headers, data, self._refresh_timeout)

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
            "POST", "/auth/token",
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

    def _http(self, method: str, path: str, headers: Mapping[str, str], body: bytes | None, timeout: float) -> tuple[int, Mapping[str, str], bytes]:
        return self._pool.request(method, path, headers, body, timeout)

    def _retrying(self, method: str, path: str, headers: Mapping[str, str], body: bytes | None) -> tuple[int, Mapping[str, str], bytes]:
        """Sends a request, retrying 429 (always) and 503 (idempotent methods)
        as RetryPolicy says. Network errors are not retried: the request may
        have reached the server."""
        attempt = 0
        while True:
            status, h, raw = self._http(method, path, headers, body, self._timeout)
            retryable = status == 429 or (status == 503 and (method in _IDEMPOTENT or "Idempotency-Key" in headers))
            if not retryable or attempt >= self._retry.max_retries:
                return status, h, raw
            ra = parse_retry_after(h.get("retry-after"))
            if ra > self._retry.max_delay:
                return status, h, raw
            time.sleep(min(self._backoff(attempt, ra), self._retry.max_delay))
            attempt += 1

    def _send_op(self, method: str, path: str, path_params: dict[str, str], query: dict[str, Any], body: Any, auth: Auth) -> tuple[int, Any]:
        """The sender of API: adds the bearer token to operations that take one,
        and on a 401 token_expired or invalid_token renews once and retries once."""
        for name, value in path_params.items():
            path = path.replace("{" + name + "}", urllib.parse.quote(value, safe=""))
        # A list is one comma-separated value (the spec's form style, explode: false).
        q = {k: ("true" if v is True else "false" if v is False else ",".join(str(x) for x in v) if isinstance(v, list) else str(v))
             for k, v in query.items() if v is not None}
        target = path + ("?" + urllib.parse.urlencode(q) if q else "")
        headers: dict[str, str] = {}
        data: bytes | None = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        if auth == "apikey" and self._api_key and path != "/auth/token":
            headers["X-API-Key"] = self._api_key
        if auth != "bearer":
            return self._result(*self._retrying(method, target, headers, data))
        tok = self._token()
        status, h, raw = self._retrying(method, target, {**headers, "Authorization": "Bearer " + tok.access_token}, data)
        if status == 401 and _code(raw, h) in ("token_expired", "invalid_token"):
            nt = self._renew(tok.access_token)
            status, h, raw = self._retrying(method, target, {**headers, "Authorization": "Bearer " + nt.access_token}, data)
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
    return "invalid_token" if 'error="invalid_token"' in headers.get("www-authenticate", "") else ""

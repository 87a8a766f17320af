"""The Python SDK against a live latchd (access TTL 10 s), through a
recording proxy: every flow, refresh before expiry and after a 401,
Retry-After, backoff, the end of a session, the file store, the error
types, connection reuse, network errors, storage failures and events."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import socket
import struct
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
from typing import Any, Callable
from unittest import mock

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.dirname(__file__))

from helpers import LATCHD_URL, PASSWORD, Answer, Clock, Proxy, Seen, SoftAuthenticator, email, otp_mail, reset_token  # noqa: E402

from latch_client import (  # noqa: E402
    ERROR_CODES, Client, FileStore, InitialSession, LatchClientError, LatchError, MemoryStore, NetworkError,
    NotLoggedInError, RefreshBackoffError, RetryPolicy, SessionEndedError, SignedIn, SignedOut, StorageError,
    TokenRefreshed, Tokens, models,
)

PROXY: Proxy


def setUpModule() -> None:
    global PROXY
    PROXY = Proxy()


def tearDownModule() -> None:
    PROXY.close()


class Events:
    """Records every event of a client, and their order."""

    def __init__(self, c: Client) -> None:
        self.initial: list[InitialSession] = []
        self.signed_in: list[SignedIn] = []
        self.refreshed: list[TokenRefreshed] = []
        self.signed_out: list[SignedOut] = []
        self.order: list[str] = []
        c.on("initial_session", self._record("initial_session", self.initial))
        c.on("signed_in", self._record("signed_in", self.signed_in))
        c.on("token_refreshed", self._record("token_refreshed", self.refreshed))
        c.on("signed_out", self._record("signed_out", self.signed_out))

    def _record(self, name: str, into: list[Any]) -> Callable[[Any], None]:
        def handler(e: Any) -> None:
            into.append(e)
            self.order.append(name)
        return handler

    def reasons(self) -> list[str]:
        return [e.reason for e in self.signed_out]


CLIENTS: list[Client] = []


def new(**kw: Any) -> tuple[Client, Events]:
    """A client of the proxy, closed after the test."""
    c = Client(PROXY.url, **kw)
    CLIENTS.append(c)
    return c, Events(c)


def rule_for(path: str, answer: Answer, times: int = -1, method: str = "") -> Callable[[Seen], Answer | None]:
    left = [times]

    def rule(s: Seen) -> Answer | None:
        if s.path != path or (method and s.method != method) or left[0] == 0:
            return None
        left[0] -= 1
        return answer

    return rule


def totp(secret: str, at: float | None = None) -> str:
    """RFC 6238 (SHA-1, 6 digits, 30 s) of a base32 secret at a time in seconds."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    counter = struct.pack(">Q", int((time.time() if at is None else at) // 30))
    mac = hmac.new(key, counter, hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return f"{(struct.unpack('>I', mac[off:off + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def claims(jwt: str) -> dict[str, Any]:
    """The payload of a JWT (not verified: the test reads its own token)."""
    part = jwt.split(".")[1]
    d = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    assert isinstance(d, dict)
    return d


class TestClient(unittest.TestCase):
    def tearDown(self) -> None:
        PROXY.rule = lambda s: None
        while CLIENTS:
            CLIENTS.pop().close()

    def test_flows_and_error_types(self) -> None:
        c, ev = new()
        addr = email("flow")
        r = c.sign_up(addr, PASSWORD)
        self.assertIsInstance(r, models.SignupSession)
        assert isinstance(r, models.SignupSession)
        self.assertEqual(r.status, "session_created")
        self.assertEqual(len(ev.signed_in), 1)
        me = c.me()
        self.assertEqual(me.email, addr)
        self.assertEqual(sum(1 for s in c.sessions().sessions if s.current), 1)
        with self.assertRaises(LatchError) as cm:
            c.sign_up(addr, PASSWORD)
        self.assertEqual((cm.exception.status, cm.exception.code), (409, "email_taken"))
        self.assertTrue(cm.exception.request_id)
        other, _ = new()
        with self.assertRaises(LatchError) as cm:
            other.sign_in(addr, "wrong password, surely")
        self.assertEqual((cm.exception.status, cm.exception.code), (401, "invalid_credentials"))
        self.assertTrue(cm.exception.message)
        other.sign_in(addr, PASSWORD)
        self.assertEqual(other.me().id, me.id)
        self.assertEqual(len(c.sessions().sessions), 2)
        fresh, _ = new()
        n = PROXY.total()
        with self.assertRaises(NotLoggedInError):
            fresh.me()
        self.assertEqual(PROXY.total(), n)

    def test_provider_sign_in_halves(self) -> None:
        # The whole flow runs against oidc-provider in Go (server/providers_test.go)
        # and Chromium; here, the URL's challenge is the verifier's S256, and a
        # code Latch does not know is refused (this latchd has no provider).
        c, ev = new()
        start = c.provider_authorize_url("google", "https://app.example.com/cb?x=1")
        url = urllib.parse.urlsplit(start.url)
        q = dict(urllib.parse.parse_qsl(url.query))
        self.assertEqual(url.path, "/auth/providers/google/authorize")
        self.assertEqual(q["redirect_to"], "https://app.example.com/cb?x=1")
        self.assertEqual(q["code_challenge_method"], "S256")
        want = base64.urlsafe_b64encode(hashlib.sha256(start.verifier.encode()).digest()).rstrip(b"=").decode()
        self.assertEqual(q["code_challenge"], want)
        self.assertGreaterEqual(len(start.verifier), 43)
        with self.assertRaises(LatchError) as cm:
            c.exchange_code("not-a-code", start.verifier)
        self.assertIn(cm.exception.code, ("invalid_grant", "unsupported_grant_type"))
        self.assertEqual(len(ev.signed_in), 0)
        # Enterprise SSO starts from the email, with a verifier of its own.
        sso = c.sso_authorize_url("ada@acme.example", "https://app.example.com/cb")
        url = urllib.parse.urlsplit(sso.url)
        q = dict(urllib.parse.parse_qsl(url.query))
        self.assertEqual(url.path, "/auth/sso")
        self.assertEqual(q["email"], "ada@acme.example")
        self.assertEqual(q["redirect_to"], "https://app.example.com/cb")
        want = base64.urlsafe_b64encode(hashlib.sha256(sso.verifier.encode()).digest()).rstrip(b"=").decode()
        self.assertEqual(q["code_challenge"], want)
        self.assertNotEqual(sso.verifier, start.verifier)

    def test_refresh_before_expiry_in_background(self) -> None:
        clock = Clock()
        c, ev = new(clock=clock)
        c.sign_up(email("proactive"), PASSWORD)
        tok = c.tokens()
        assert tok is not None
        n = PROXY.count("POST", "/auth/refresh")
        clock.offset = 8.5  # inside the margin, still valid
        PROXY.rule = rule_for("/auth/refresh", Answer(delay=1.5))
        c.me()
        self.assertEqual(len(ev.refreshed), 0, "the call waited for the refresh")
        self.assertEqual([s for s in PROXY.seen if s.path == "/auth/me"][-1].auth, "Bearer " + tok.access_token)
        while not ev.refreshed:
            time.sleep(0.05)
        self.assertEqual(PROXY.count("POST", "/auth/refresh"), n + 1)
        new_tok = c.tokens()
        assert new_tok is not None
        self.assertNotEqual(new_tok.access_token, tok.access_token)
        c.me()
        self.assertEqual([s for s in PROXY.seen if s.path == "/auth/me"][-1].auth, "Bearer " + new_tok.access_token)

    def test_single_flight_across_threads(self) -> None:
        clock = Clock()
        c, _ = new(clock=clock)
        c.sign_up(email("flight"), PASSWORD)
        n = PROXY.count("POST", "/auth/refresh")
        clock.offset = 11
        errors: list[BaseException] = []

        def call() -> None:
            try:
                c.me()
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=call) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(PROXY.count("POST", "/auth/refresh"), n + 1)

    def test_401_token_expired_refreshes_once_and_retries(self) -> None:
        clock = Clock()
        c, ev = new(clock=clock)
        c.sign_up(email("expired"), PASSWORD)
        clock.offset = -60  # the client believes its token fresh; the server will not
        time.sleep(11)
        n = PROXY.total()
        c.me()
        self.assertEqual([(s.method, s.path, s.status) for s in PROXY.since(n)],
                         [("GET", "/auth/me", 401), ("POST", "/auth/refresh", 200), ("GET", "/auth/me", 200)])
        self.assertEqual(len(ev.refreshed), 1)

    def test_retry_after_429_503_and_no_retry_of_non_idempotent(self) -> None:
        c, _ = new(retry_policy=RetryPolicy(base_delay=0.05))
        c.sign_up(email("retry"), PASSWORD)
        for status in (429, 503):
            PROXY.rule = rule_for("/auth/me", Answer(status=status, headers={"Retry-After": "1"}), times=1)
            n = PROXY.total()
            c.me()
            mes = [s for s in PROXY.since(n) if s.path == "/auth/me"]
            self.assertEqual([s.status for s in mes], [status, 200])
            self.assertGreaterEqual(mes[1].at - mes[0].at, 1.0, "retried before Retry-After")
        PROXY.rule = rule_for("/api-keys", Answer(status=503, headers={"Retry-After": "1"}), method="POST")
        posts = PROXY.count("POST", "/api-keys")
        with self.assertRaises(LatchError) as cm:
            c.api.create_api_key(models.CreateAPIKeyRequest(label="k", scopes=["keys:read"]))
        self.assertEqual((cm.exception.code, cm.exception.retry_after), ("unavailable", 1.0))
        self.assertEqual(PROXY.count("POST", "/api-keys"), posts + 1)
        PROXY.rule = rule_for("/api-keys", Answer(status=429, headers={"Retry-After": "1"}), times=1, method="POST")
        key = c.api.create_api_key(models.CreateAPIKeyRequest(label="k2", scopes=["keys:read"]))
        self.assertTrue(key.key)
        self.assertEqual(PROXY.count("POST", "/api-keys"), posts + 3)

    def test_refresh_429_is_remembered(self) -> None:
        clock = Clock()
        c, _ = new(clock=clock)
        c.sign_up(email("backoff429"), PASSWORD)
        PROXY.rule = rule_for("/auth/refresh", Answer(status=429, headers={"Retry-After": "5"}))
        n = PROXY.count("POST", "/auth/refresh")
        clock.offset = 11
        with self.assertRaises(RefreshBackoffError) as cm:
            c.me()
        first = cm.exception
        self.assertGreaterEqual(first.retry_after, 5.0)
        self.assertIsInstance(first.__cause__, LatchError)
        assert isinstance(first.__cause__, LatchError)
        self.assertEqual(first.__cause__.code, "rate_limited")
        sent = PROXY.total()
        with self.assertRaises(RefreshBackoffError) as cm:
            c.me()
        self.assertEqual(cm.exception.retry_at, first.retry_at)
        self.assertEqual(PROXY.total(), sent, "a call during the backoff sent a request")
        PROXY.rule = lambda s: None
        clock.offset = 11 + first.retry_after + 0.001
        self.assertTrue(c.me().id)
        self.assertEqual(PROXY.count("POST", "/auth/refresh"), n + 2)

    def test_valid_token_goes_ahead_during_backoff(self) -> None:
        clock = Clock()
        c, _ = new(clock=clock)
        c.sign_up(email("valid"), PASSWORD)
        PROXY.rule = rule_for("/auth/refresh", Answer(status=503, headers={"Retry-After": "30"}))
        n = PROXY.count("POST", "/auth/refresh")
        clock.offset = 8.5
        for _ in range(5):
            self.assertTrue(c.me().id)
            time.sleep(0.05)
        self.assertEqual(PROXY.count("POST", "/auth/refresh"), n + 1)

    def test_network_and_5xx_back_off_exponentially(self) -> None:
        clock = Clock()
        c, _ = new(clock=clock, retry_policy=RetryPolicy(base_delay=1.0, max_delay=4.0))
        c.sign_up(email("backoff5xx"), PASSWORD)
        clock.offset = 11
        n = PROXY.count("POST", "/auth/refresh")
        PROXY.rule = rule_for("/auth/refresh", Answer(drop=True))
        with self.assertRaises(RefreshBackoffError) as cm:
            c.me()
        e = cm.exception
        self.assertTrue(0.5 <= e.retry_after <= 1.0, e.retry_after)
        self.assertIsInstance(e.__cause__, NetworkError)
        self.assertEqual(PROXY.count("POST", "/auth/refresh"), n + 2, "dropped refresh replayed exactly once")
        PROXY.rule = rule_for("/auth/refresh", Answer(status=500))
        for lo, hi in ((1.0, 2.0), (2.0, 4.0), (2.0, 4.0)):
            clock.offset += e.retry_after
            with self.assertRaises(RefreshBackoffError) as cm:
                c.me()
            e = cm.exception
            self.assertTrue(lo <= e.retry_after <= hi, (lo, e.retry_after, hi))
            assert isinstance(e.__cause__, LatchError)
            self.assertEqual(e.__cause__.status, 500)
        self.assertEqual(PROXY.count("POST", "/auth/refresh"), n + 5)
        PROXY.rule = lambda s: None
        clock.offset += e.retry_after
        self.assertTrue(c.me().id)

    def test_revoked_session_signed_out_once_then_nothing_sent(self) -> None:
        addr = email("revoked")
        c, ev = new()
        c.sign_up(addr, PASSWORD)
        tok = c.tokens()
        assert tok is not None and tok.session_id
        other, _ = new()
        other.sign_in(addr, PASSWORD)
        other.api.revoke_session(tok.session_id)
        with self.assertRaises(SessionEndedError) as cm:
            c.me()
        self.assertEqual(cm.exception.reason, "invalid_grant")
        self.assertEqual(ev.reasons(), ["invalid_grant"])
        sent = PROXY.total()
        for call in (c.me, c.sessions, c.refresh):
            with self.assertRaises(SessionEndedError):
                call()
        self.assertEqual(PROXY.total(), sent, "an ended session sent a request")
        self.assertEqual(len(ev.signed_out), 1)
        self.assertIsNone(c.tokens())
        c.sign_in(addr, PASSWORD)
        self.assertTrue(c.me().id)

    def test_logout_scopes(self) -> None:
        addr = email("logout")
        (a, ea), (b, eb), (d, _) = new(), new(), new()
        a.sign_up(addr, PASSWORD)
        b.sign_in(addr, PASSWORD)
        d.sign_in(addr, PASSWORD)
        a.logout("others")
        self.assertEqual(ea.signed_out, [])
        self.assertTrue(a.me().id)
        for x in (b, d):
            with self.assertRaises(SessionEndedError):
                x.me()
        a.logout("local")
        self.assertEqual(ea.reasons(), ["logout"])
        sent = PROXY.total()
        with self.assertRaises(SessionEndedError) as cm:
            a.me()
        self.assertEqual(cm.exception.reason, "logout")
        self.assertEqual(PROXY.total(), sent)
        b.sign_in(addr, PASSWORD)
        d.sign_in(addr, PASSWORD)
        b.logout("global")
        with self.assertRaises(SessionEndedError):
            d.me()
        self.assertEqual(eb.reasons(), ["invalid_grant", "logout"])

    def test_api_keys_and_exchange(self) -> None:
        c, _ = new()
        c.sign_up(email("keys"), PASSWORD)
        key = c.api.create_api_key(models.CreateAPIKeyRequest(label="backend", scopes=["token:exchange", "users:read", "billing:read"]))
        self.assertEqual(len(c.api.list_api_keys().api_keys), 1)
        clock = Clock()
        n0 = PROXY.count("POST", "/auth/token")
        svc, _ = new(api_key=key.key, exchange=models.ExchangeRequest(scopes=["users:read", "billing:read"], expires_in=60), clock=clock)
        self.assertEqual(svc.me().id, c.me().id)
        tok = svc.tokens()
        assert tok is not None and tok.scope
        self.assertEqual(sorted(tok.scope.split()), ["billing:read", "users:read"])
        self.assertEqual(PROXY.count("POST", "/auth/token"), n0 + 1)
        clock.offset = 50  # due, still valid; renewal fails: the token stays
        PROXY.rule = rule_for("/auth/token", Answer(status=503, headers={"Retry-After": "30"}))
        self.assertTrue(svc.me().id)
        time.sleep(0.2)
        kept = svc.tokens()
        assert kept is not None
        self.assertEqual(kept.access_token, tok.access_token)
        self.assertTrue(svc.me().id)
        self.assertEqual(PROXY.count("POST", "/auth/token"), n0 + 2)
        PROXY.rule = lambda s: None
        clock.offset = 50 + 31 + 3
        self.assertTrue(svc.me().id)
        renewed = svc.tokens()
        assert renewed is not None
        self.assertNotEqual(renewed.access_token, tok.access_token)
        c.api.revoke_api_key(key.id)
        clock.offset += 61
        for _ in range(2):  # a permanent refusal is raised as it is, each time, not backed off
            n = PROXY.count("POST", "/auth/token")
            with self.assertRaises(LatchError) as cm:
                svc.me()
            self.assertEqual(cm.exception.status, 401)
            self.assertEqual(PROXY.count("POST", "/auth/token"), n + 1)

    def test_password_reset_via_mail_log(self) -> None:
        addr = email("reset")
        c, ev = new()
        c.sign_up(addr, PASSWORD)
        anon, _ = new()
        anon.api.forgot_password(models.ForgotPasswordRequest(email=addr))
        token = reset_token(addr)
        new_password = "another horse battery staple"
        anon.api.reset_password(models.ResetPasswordRequest(token=token, password=new_password))
        with self.assertRaises(LatchError) as cm:
            anon.sign_in(addr, PASSWORD)
        self.assertEqual(cm.exception.code, "invalid_credentials")
        anon.sign_in(addr, new_password)
        self.assertEqual(anon.me().email, addr)
        with self.assertRaises(SessionEndedError):
            c.me()
        self.assertEqual(ev.reasons(), ["invalid_grant"])

    def test_email_sign_in_with_code_and_link(self) -> None:
        addr = email("otp")
        c, _ = new()
        c.sign_up(addr, PASSWORD)
        anon, ev = new()
        anon.sign_in_with_otp(addr)
        code, _ = otp_mail(addr)
        r = anon.verify_otp(email=addr, code=code)
        self.assertIsNone(r.mfa)
        self.assertEqual(r.tokens.aal, "aal1")
        self.assertEqual(anon.me().email, addr)
        with self.assertRaises(LatchError) as cm:
            new()[0].verify_otp(email=addr, code=code)
        self.assertEqual((cm.exception.status, cm.exception.code), (400, "invalid_token"))

        other = email("otp-link")
        new()[0].sign_up(other, PASSWORD)
        linked, _ = new()
        linked.sign_in_with_otp(other, redirect_to="http://app.test/callback")
        _, tok = otp_mail(other)
        assert tok is not None
        self.assertEqual(linked.verify_otp(token=tok).tokens.user.email, other)
        with self.assertRaises(LatchError) as cm:
            new()[0].verify_otp(token=tok)
        self.assertEqual(cm.exception.code, "invalid_token")
        with self.assertRaises(LatchError) as cm:
            anon.sign_in_with_otp(addr, redirect_to="https://evil.test/")
        self.assertEqual(cm.exception.code, "invalid_request")

        fresh = email("otp-new")
        made, _ = new()
        made.sign_in_with_otp(fresh, create_user=True)
        code, _ = otp_mail(fresh)
        self.assertEqual(made.verify_otp(email=fresh, code=code).tokens.user.email, fresh)
        self.assertTrue(made.me().email_verified)

    def test_file_store_shared_by_two_clients(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "tokens.json")
            a, _ = new(store=FileStore(path))
            addr = email("file")
            a.sign_up(addr, PASSWORD)
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
            b, eb = new(store=FileStore(path))
            self.assertEqual(b.me().email, addr)
            n = PROXY.count("POST", "/auth/refresh")
            a.refresh()
            b.refresh()  # re-reads the file under the lock: adopts, does not spend the token again
            self.assertEqual(PROXY.count("POST", "/auth/refresh"), n + 1)
            ta, tb = a.tokens(), b.tokens()
            assert ta is not None and tb is not None
            self.assertEqual(ta.access_token, tb.access_token)
            a.logout()
            self.assertFalse(os.path.exists(path))
            with self.assertRaises(SessionEndedError) as cm:
                b.refresh()
            self.assertEqual(cm.exception.reason, "revoked_elsewhere")
            self.assertEqual(eb.reasons(), ["revoked_elsewhere"])

    def assert_code(self, code: str, call: Callable[[], object]) -> LatchError:
        with self.assertRaises(LatchError) as cm:
            call()
        self.assertEqual(cm.exception.code, code)
        return cm.exception

    def test_mfa_totp_pending_factor_recovery_code_removal(self) -> None:
        self.assertEqual(totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 59), "287082")  # RFC 6238's vector
        addr = email("mfa")
        c, ev = new()
        c.sign_up(addr, PASSWORD)
        plain = new()[0].sign_in(addr, PASSWORD)
        self.assertIsNone(plain.mfa, "no factor, nothing pending")
        self.assertEqual(c.mfa.factors().factors, [])
        self.assert_code("not_found", c.mfa.begin_webauthn)

        # Enrol and confirm: the session is raised to aal2 and its new tokens are held.
        en = c.mfa.enroll_totp("Phone")
        self.assertFalse(en.factor.verified)
        self.assertTrue(en.otpauth_uri.startswith("otpauth://totp/"))
        before = c.tokens()
        conf = c.mfa.confirm_totp(en.factor.id, totp(en.secret))
        recovery = conf.recovery_codes
        assert recovery is not None and before is not None
        self.assertEqual(len(recovery), 10)
        self.assertEqual(conf.tokens.aal, "aal2")
        held = c.tokens()
        assert held is not None
        self.assertEqual(held.access_token, conf.tokens.access_token)
        self.assertNotEqual(held.refresh_token, before.refresh_token)
        self.assertEqual(held.session_id, before.session_id)
        self.assertEqual(claims(held.access_token)["aal"], "aal2")
        self.assertEqual(len(ev.signed_in), 2)

        # Signing in again leaves the TOTP factor pending at aal1.
        other, oev = new()
        r = other.sign_in(addr, PASSWORD)
        assert r.mfa is not None
        self.assertTrue(r.has_factor("totp"))
        self.assertIn(en.factor.id, [f.id for f in r.mfa.factors])
        self.assertEqual(r.tokens.aal, "aal1")
        aal1 = other.tokens()
        assert aal1 is not None
        self.assertEqual(claims(aal1.access_token)["aal"], "aal1")
        self.assertEqual(self.assert_code("mfa_required", other.mfa.regenerate_recovery_codes).status, 403)
        self.assert_code("mfa_required", other.mfa.enroll_totp)

        # A wrong code is the typed error and changes nothing held.
        valid = [totp(en.secret, time.time() + d) for d in (-30, 0, 30)]
        wrong = next(f"{i:06d}" for i in range(10) if f"{i:06d}" not in valid)
        self.assertEqual(self.assert_code("mfa_verification_failed", lambda: other.mfa.verify_totp(wrong)).status, 400)
        t = other.tokens()
        assert t is not None
        self.assertEqual(t.access_token, aal1.access_token)

        # A recovery code raises the same session; the client holds the new tokens.
        spent = recovery[0]
        up = other.mfa.verify_recovery_code(spent)
        self.assertEqual((up.aal, up.session_id), ("aal2", r.tokens.session_id))
        raised = other.tokens()
        assert raised is not None
        self.assertEqual(raised.access_token, up.access_token)
        self.assertNotEqual(raised.access_token, aal1.access_token)
        self.assertNotEqual(raised.refresh_token, aal1.refresh_token)
        self.assertEqual(claims(raised.access_token)["aal"], "aal2")
        self.assertEqual(len(oev.signed_in), 2)
        self.assertEqual(claims(other.refresh().access_token)["aal"], "aal2", "a refresh keeps aal2")
        listed = other.mfa.factors()
        self.assertEqual(listed.aal, "aal2")
        self.assertEqual([(f.id, f.verified) for f in listed.factors], [(en.factor.id, True)])
        self.assertEqual(listed.recovery_codes_remaining, 9)

        # A spent recovery code is refused; a TOTP code of the next step is accepted, once.
        third, _ = new()
        third.sign_in(addr, PASSWORD)
        self.assert_code("mfa_verification_failed", lambda: third.mfa.verify_recovery_code(spent))
        code = totp(en.secret, time.time() + 30)
        self.assertEqual(third.mfa.verify_totp(code).aal, "aal2")
        fourth, _ = new()
        fourth.sign_in(addr, PASSWORD)
        self.assert_code("mfa_verification_failed", lambda: fourth.mfa.verify_totp(code))

        self.assertEqual(len(other.mfa.regenerate_recovery_codes()), 10)
        other.mfa.remove_factor(en.factor.id)
        self.assertEqual(other.mfa.factors().factors, [])
        self.assertIsNone(new()[0].sign_in(addr, PASSWORD).mfa)

    def test_mfa_webauthn_with_a_software_authenticator(self) -> None:
        addr = email("webauthn")
        c, _ = new()
        c.sign_up(addr, PASSWORD)
        # Registering is not a Client method: the typed api does it.
        key = SoftAuthenticator()
        reg = c.api.begin_web_authn_registration()
        done = c.api.finish_web_authn_registration(
            models.WebAuthnRegistrationRequest(credential=key.create(reg.options, LATCHD_URL), name="Key"))
        self.assertEqual(done.factor.type, "webauthn")

        other, _ = new()
        r = other.sign_in(addr, PASSWORD)
        assert r.mfa is not None
        self.assertTrue(r.has_factor("webauthn"))
        aal1 = other.tokens()
        assert aal1 is not None
        # An assertion made for another origin is refused.
        first = other.mfa.begin_webauthn()
        self.assert_code("mfa_verification_failed", lambda: other.mfa.verify_webauthn(key.get(first, "https://evil.example")))
        options = other.mfa.begin_webauthn()
        challenge = options["publicKey"]["challenge"]
        self.assertTrue(isinstance(challenge, str) and challenge)
        self.assertNotEqual(challenge, first["publicKey"]["challenge"])
        up = other.mfa.verify_webauthn(key.get(options, LATCHD_URL))
        self.assertEqual((up.aal, up.session_id), ("aal2", r.tokens.session_id))
        held = other.tokens()
        assert held is not None
        self.assertEqual(held.access_token, up.access_token)
        self.assertNotEqual(held.refresh_token, aal1.refresh_token)
        self.assertEqual(claims(held.access_token)["amr"], ["pwd", "hwk", "mfa"])


    def test_connections_reused_at_most_one_per_thread(self) -> None:
        threads, calls = 8, 40
        c, _ = new()
        c.sign_up(email("pool"), PASSWORD)
        conns, seen = PROXY.connections(), PROXY.total()
        errors: list[BaseException] = []
        start = threading.Barrier(threads)

        def work() -> None:
            start.wait()
            for _ in range(calls):
                try:
                    c.me()
                except BaseException as e:  # noqa: BLE001
                    errors.append(e)

        ts = [threading.Thread(target=work) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(PROXY.total() - seen, threads * calls)
        opened = PROXY.connections() - conns
        self.assertLessEqual(opened, threads, f"{opened} connections for {threads} threads")
        # One thread reuses one connection for every call.
        conns = PROXY.connections()
        for _ in range(20):
            c.me()
        self.assertLessEqual(PROXY.connections() - conns, 1)
        c.close()

    def test_connection_closed_by_the_server(self) -> None:
        c, _ = new()
        c.sign_up(email("stale"), PASSWORD)
        self.assertTrue(c.me().id)
        conns, n = PROXY.connections(), PROXY.total()
        PROXY.close_connections()  # as a server closes idle keep-alive connections
        self.assertTrue(c.me().id)
        self.assertEqual(PROXY.connections(), conns + 1, "the closed connection was not replaced")
        self.assertEqual(PROXY.total(), n + 1, "a request went to the closed connection")
        # Closed while answering: a GET is sent again once on a new connection, a POST is not.
        PROXY.rule = rule_for("/auth/me", Answer(drop=True), times=1)
        n = PROXY.total()
        self.assertTrue(c.me().id)
        self.assertEqual([(s.path, s.status) for s in PROXY.since(n)], [("/auth/me", -1), ("/auth/me", 200)])
        PROXY.rule = rule_for("/api-keys", Answer(drop=True), method="POST")
        n = PROXY.total()
        with self.assertRaises(NetworkError) as cm:
            c.create_api_key("dropped", ["keys:read"])
        self.assertIsInstance(cm.exception.__cause__, http.client.RemoteDisconnected)
        self.assertEqual(PROXY.total(), n + 1, "a POST was sent twice")

    def test_close_and_with(self) -> None:
        with Client(PROXY.url) as c:
            c.sign_up(email("with"), PASSWORD)
            self.assertTrue(c.me().id)
        n = PROXY.total()
        with self.assertRaises(RuntimeError):
            c.me()
        self.assertEqual(PROXY.total(), n, "a closed client sent a request")

    def test_network_error_refused(self) -> None:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        c = Client(f"http://127.0.0.1:{port}")
        with self.assertRaises(NetworkError) as cm:
            c.sign_in(email("refused"), PASSWORD)
        self.assertIsInstance(cm.exception, LatchClientError)
        self.assertIsInstance(cm.exception.__cause__, ConnectionRefusedError)
        self.assertFalse(cm.exception.timeout)

    def test_network_error_timeout(self) -> None:
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)  # accepts connections, never answers
        try:
            c = Client(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.3)
            with self.assertRaises(NetworkError) as cm:
                c.sign_in(email("silent"), PASSWORD)
            self.assertTrue(cm.exception.timeout)
            self.assertIsInstance(cm.exception.__cause__, TimeoutError)
        finally:
            silent.close()

    def test_file_store_expands_home(self) -> None:
        with tempfile.TemporaryDirectory() as home, mock.patch.dict(os.environ, {"HOME": home}):
            store = FileStore("~/.latch-tokens.json")
            self.assertEqual(store.path, os.path.join(home, ".latch-tokens.json"))
            c, _ = new(store=store)
            c.sign_up(email("home"), PASSWORD)
            self.assertTrue(os.path.exists(os.path.join(home, ".latch-tokens.json")))

    def test_store_that_cannot_save_is_noticed_before_signup(self) -> None:
        addr = email("nodir")
        with tempfile.TemporaryDirectory() as d:
            c, ev = new(store=FileStore(os.path.join(d, "missing", "tokens.json")))
            n = PROXY.total()
            with self.assertRaises(StorageError) as cm:
                c.sign_up(addr, PASSWORD)
            self.assertIsNone(cm.exception.tokens)
            self.assertIsInstance(cm.exception.__cause__, OSError)
            self.assertEqual(PROXY.total(), n, "sent a sign-up that could not be kept")
            self.assertEqual(ev.signed_in, [])
        ok, _ = new()
        self.assertIsInstance(ok.sign_up(addr, PASSWORD), models.SignupSession, "no account was left behind")

    def test_store_failure_after_signup_carries_the_session(self) -> None:
        class Broken(MemoryStore):
            def save(self, tokens: Tokens) -> None:
                raise OSError(28, "No space left on device")

        addr = email("broken")
        c, ev = new(store=Broken())
        with self.assertRaises(StorageError) as cm:
            c.sign_up(addr, PASSWORD)
        e = cm.exception
        assert e.tokens is not None
        self.assertIsInstance(e.__cause__, OSError)
        self.assertIsInstance(e.result, models.SignupSession)
        self.assertIsNone(c.tokens(), "a session the store did not keep is not the client's")
        self.assertEqual(ev.signed_in, [])
        kept, kev = new()
        kept.set_tokens(e.tokens)  # the caller keeps the session the error carried
        self.assertEqual(kept.me().email, addr)
        self.assertEqual(len(kev.signed_in), 1)
        with self.assertRaises(StorageError) as cm2:
            c.sign_in(addr, PASSWORD)
        self.assertIsNotNone(cm2.exception.tokens)
        self.assertEqual(len(kept.sessions().sessions), 2)

    def test_store_failure_after_refresh_is_raised_with_the_tokens(self) -> None:
        class Flaky(MemoryStore):
            fail = False

            def save(self, tokens: Tokens) -> None:
                if self.fail:
                    raise OSError(30, "Read-only file system")
                super().save(tokens)

        store = Flaky()
        c, ev = new(store=store)
        c.sign_up(email("flaky"), PASSWORD)
        before = c.tokens()
        store.fail = True
        n = PROXY.count("POST", "/auth/refresh")
        with self.assertRaises(StorageError) as cm:
            c.refresh()
        e = cm.exception
        assert e.tokens is not None and before is not None
        self.assertEqual(PROXY.count("POST", "/auth/refresh"), n + 1)
        self.assertNotEqual(e.tokens.refresh_token, before.refresh_token)
        held = c.tokens()
        assert held is not None
        self.assertEqual(held.access_token, e.tokens.access_token, "the rotated tokens are held, not lost")
        self.assertTrue(c.me().id)
        self.assertEqual(ev.signed_out, [])

    def test_initial_session_first_then_signed_out(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "tokens.json")
            empty, eev = new(store=FileStore(path))
            self.assertEqual(len(eev.initial), 1)
            self.assertFalse(eev.initial[0].found)
            a, _ = new(store=FileStore(path))
            a.sign_up(email("initial"), PASSWORD)
            b, ev = new(store=FileStore(path))
            self.assertEqual(len(ev.initial), 1)
            self.assertTrue(ev.initial[0].found)
            held = a.tokens()
            assert held is not None and ev.initial[0].tokens is not None
            self.assertEqual(ev.initial[0].tokens.access_token, held.access_token)
            a.logout()  # another client sharing the file ends the session
            with self.assertRaises(SessionEndedError):
                b.refresh()
            self.assertEqual(ev.order, ["initial_session", "signed_out"])
            self.assertEqual(ev.reasons(), ["revoked_elsewhere"])
            self.assertEqual(eev.order, ["initial_session"])

    def test_handler_exception_is_reported_not_swallowed(self) -> None:
        c, ev = new()
        calls: list[str] = []

        def bad(e: SignedIn) -> None:
            raise ValueError("handler bug")

        c.on("signed_in", bad)
        c.on("signed_in", lambda e: calls.append(e.tokens.access_token))
        with self.assertLogs("latch_client", "ERROR") as logs:
            c.sign_up(email("handler"), PASSWORD)
        self.assertIn("signed_in handler raised", logs.output[0])
        self.assertIn("ValueError: handler bug", logs.output[0])
        self.assertEqual(len(calls), 1, "a later handler was not called")
        self.assertEqual(len(ev.signed_in), 1)
        self.assertTrue(c.me().id)
        def bad_initial(e: InitialSession) -> None:
            raise ValueError("initial handler bug")

        with self.assertLogs("latch_client", "ERROR"):
            c.on("initial_session", bad_initial)

    def test_error_codes_are_the_specs(self) -> None:
        self.assertIn("email_taken", ERROR_CODES)
        self.assertIn("mfa_verification_failed", ERROR_CODES)
        e = LatchError(400, {"error": "a_code_from_the_future", "message": "m"})
        self.assertEqual(e.code, "invalid_request", "an unknown code falls back to the status's")
        self.assertEqual(e.body["error"], "a_code_from_the_future")
        self.assertIn("a_code_from_the_future", str(e))
        self.assertTrue(e.permanent)
        self.assertFalse(LatchError(429, None).permanent)
        self.assertFalse(LatchError(408, None).permanent)

    def test_permanent_exchange_error_is_raised_not_backed_off(self) -> None:
        c, _ = new()
        c.sign_up(email("perm"), PASSWORD)
        key = c.create_api_key("no exchange", ["users:read"])
        svc, _ = new(api_key=key.key, exchange=models.ExchangeRequest(scopes=["users:read"]))
        for _ in range(2):
            n = PROXY.count("POST", "/auth/token")
            with self.assertRaises(LatchError) as cm:
                svc.me()
            self.assertEqual(cm.exception.status, 403)
            self.assertEqual(PROXY.count("POST", "/auth/token"), n + 1)

    def test_revoke_session(self) -> None:
        addr = email("revoke")
        a, _ = new()
        a.sign_up(addr, PASSWORD)
        b, eb = new()
        b.sign_in(addr, PASSWORD)
        bt = b.tokens()
        assert bt is not None and bt.session_id
        a.revoke_session(bt.session_id)
        with self.assertRaises(SessionEndedError):
            b.me()
        self.assertEqual(eb.reasons(), ["invalid_grant"])

if __name__ == "__main__":
    unittest.main(verbosity=2)

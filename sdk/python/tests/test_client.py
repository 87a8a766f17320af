"""The Python SDK against a live latchd (access TTL 10 s), through a
recording proxy: every flow, refresh before expiry and after a 401,
Retry-After, backoff, the end of a session, the file store, and the error
types."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
import sys
import tempfile
import threading
import time
import unittest
from typing import Any, Callable

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.dirname(__file__))

from helpers import LATCHD_URL, PASSWORD, Answer, Clock, Proxy, Seen, SoftAuthenticator, email, reset_token  # noqa: E402

from latch_client import (  # noqa: E402
    Client, FileStore, LatchError, NotLoggedInError, RefreshBackoffError, RetryPolicy,
    SessionEndedError, SignedOut, models,
)

PROXY: Proxy


def setUpModule() -> None:
    global PROXY
    PROXY = Proxy()


def tearDownModule() -> None:
    PROXY.close()


class Events:
    def __init__(self, c: Client) -> None:
        self.signed_in: list[Any] = []
        self.refreshed: list[Any] = []
        self.signed_out: list[SignedOut] = []
        c.on("signed_in", self.signed_in.append)
        c.on("token_refreshed", self.refreshed.append)
        c.on("signed_out", self.signed_out.append)

    def reasons(self) -> list[str]:
        return [e.reason for e in self.signed_out]


def new(**kw: Any) -> tuple[Client, Events]:
    c = Client(PROXY.url, **kw)
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

    def test_flows_and_error_types(self) -> None:
        c, ev = new()
        addr = email("flow")
        r = c.signup(addr, PASSWORD)
        self.assertIsInstance(r, models.SignupSession)
        assert isinstance(r, models.SignupSession)
        self.assertEqual(r.status, "session_created")
        self.assertEqual(len(ev.signed_in), 1)
        me = c.me()
        self.assertEqual(me.email, addr)
        self.assertEqual(sum(1 for s in c.sessions().sessions if s.current), 1)
        with self.assertRaises(LatchError) as cm:
            c.signup(addr, PASSWORD)
        self.assertEqual((cm.exception.status, cm.exception.code), (409, "email_taken"))
        self.assertTrue(cm.exception.request_id)
        other, _ = new()
        with self.assertRaises(LatchError) as cm:
            other.login(addr, "wrong password, surely")
        self.assertEqual((cm.exception.status, cm.exception.code), (401, "invalid_credentials"))
        self.assertTrue(cm.exception.message)
        other.login(addr, PASSWORD)
        self.assertEqual(other.me().id, me.id)
        self.assertEqual(len(c.sessions().sessions), 2)
        fresh, _ = new()
        n = PROXY.total()
        with self.assertRaises(NotLoggedInError):
            fresh.me()
        self.assertEqual(PROXY.total(), n)

    def test_refresh_before_expiry_in_background(self) -> None:
        clock = Clock()
        c, ev = new(clock=clock)
        c.signup(email("proactive"), PASSWORD)
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
        c.signup(email("flight"), PASSWORD)
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
        c.signup(email("expired"), PASSWORD)
        clock.offset = -60  # the client believes its token fresh; the server will not
        time.sleep(11)
        n = PROXY.total()
        c.me()
        self.assertEqual([(s.method, s.path, s.status) for s in PROXY.since(n)],
                         [("GET", "/auth/me", 401), ("POST", "/auth/refresh", 200), ("GET", "/auth/me", 200)])
        self.assertEqual(len(ev.refreshed), 1)

    def test_retry_after_429_503_and_no_retry_of_non_idempotent(self) -> None:
        c, _ = new(retry_policy=RetryPolicy(base_delay=0.05))
        c.signup(email("retry"), PASSWORD)
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
        c.signup(email("backoff429"), PASSWORD)
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
        c.signup(email("valid"), PASSWORD)
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
        c.signup(email("backoff5xx"), PASSWORD)
        clock.offset = 11
        n = PROXY.count("POST", "/auth/refresh")
        PROXY.rule = rule_for("/auth/refresh", Answer(drop=True))
        with self.assertRaises(RefreshBackoffError) as cm:
            c.me()
        e = cm.exception
        self.assertTrue(0.5 <= e.retry_after <= 1.0, e.retry_after)
        self.assertNotIsInstance(e.__cause__, LatchError)
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
        c.signup(addr, PASSWORD)
        tok = c.tokens()
        assert tok is not None and tok.session_id
        other, _ = new()
        other.login(addr, PASSWORD)
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
        c.login(addr, PASSWORD)
        self.assertTrue(c.me().id)

    def test_logout_scopes(self) -> None:
        addr = email("logout")
        (a, ea), (b, eb), (d, _) = new(), new(), new()
        a.signup(addr, PASSWORD)
        b.login(addr, PASSWORD)
        d.login(addr, PASSWORD)
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
        b.login(addr, PASSWORD)
        d.login(addr, PASSWORD)
        b.logout("global")
        with self.assertRaises(SessionEndedError):
            d.me()
        self.assertEqual(eb.reasons(), ["invalid_grant", "logout"])

    def test_api_keys_and_exchange(self) -> None:
        c, _ = new()
        c.signup(email("keys"), PASSWORD)
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
        with self.assertRaises(RefreshBackoffError) as cm:
            svc.me()
        assert isinstance(cm.exception.__cause__, LatchError)
        self.assertEqual(cm.exception.__cause__.status, 401)

    def test_password_reset_via_mail_log(self) -> None:
        addr = email("reset")
        c, ev = new()
        c.signup(addr, PASSWORD)
        anon, _ = new()
        anon.api.forgot_password(models.ForgotPasswordRequest(email=addr))
        token = reset_token(addr)
        new_password = "another horse battery staple"
        anon.api.reset_password(models.ResetPasswordRequest(token=token, password=new_password))
        with self.assertRaises(LatchError) as cm:
            anon.login(addr, PASSWORD)
        self.assertEqual(cm.exception.code, "invalid_credentials")
        anon.login(addr, new_password)
        self.assertEqual(anon.me().email, addr)
        with self.assertRaises(SessionEndedError):
            c.me()
        self.assertEqual(ev.reasons(), ["invalid_grant"])

    def test_file_store_shared_by_two_clients(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "tokens.json")
            a, _ = new(store=FileStore(path))
            addr = email("file")
            a.signup(addr, PASSWORD)
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
        c.signup(addr, PASSWORD)
        plain = new()[0].sign_in(addr, PASSWORD)
        self.assertIsNone(plain.mfa, "no factor, nothing pending")
        self.assertEqual(c.factors().factors, [])
        self.assert_code("not_found", c.begin_webauthn)

        # Enrol and confirm: the session is raised to aal2 and its new tokens are held.
        en = c.enroll_totp("Phone")
        self.assertFalse(en.factor.verified)
        self.assertTrue(en.otpauth_uri.startswith("otpauth://totp/"))
        before = c.tokens()
        conf = c.confirm_totp(en.factor.id, totp(en.secret))
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
        self.assertEqual(self.assert_code("mfa_required", other.regenerate_recovery_codes).status, 403)
        self.assert_code("mfa_required", other.enroll_totp)

        # A wrong code is the typed error and changes nothing held.
        valid = [totp(en.secret, time.time() + d) for d in (-30, 0, 30)]
        wrong = next(f"{i:06d}" for i in range(10) if f"{i:06d}" not in valid)
        self.assertEqual(self.assert_code("mfa_verification_failed", lambda: other.verify_totp(wrong)).status, 400)
        t = other.tokens()
        assert t is not None
        self.assertEqual(t.access_token, aal1.access_token)

        # A recovery code raises the same session; the client holds the new tokens.
        spent = recovery[0]
        up = other.verify_recovery_code(spent)
        self.assertEqual((up.aal, up.session_id), ("aal2", r.tokens.session_id))
        raised = other.tokens()
        assert raised is not None
        self.assertEqual(raised.access_token, up.access_token)
        self.assertNotEqual(raised.access_token, aal1.access_token)
        self.assertNotEqual(raised.refresh_token, aal1.refresh_token)
        self.assertEqual(claims(raised.access_token)["aal"], "aal2")
        self.assertEqual(len(oev.signed_in), 2)
        self.assertEqual(claims(other.refresh().access_token)["aal"], "aal2", "a refresh keeps aal2")
        listed = other.factors()
        self.assertEqual(listed.aal, "aal2")
        self.assertEqual([(f.id, f.verified) for f in listed.factors], [(en.factor.id, True)])
        self.assertEqual(listed.recovery_codes_remaining, 9)

        # A spent recovery code is refused; a TOTP code of the next step is accepted, once.
        third, _ = new()
        third.sign_in(addr, PASSWORD)
        self.assert_code("mfa_verification_failed", lambda: third.verify_recovery_code(spent))
        code = totp(en.secret, time.time() + 30)
        self.assertEqual(third.verify_totp(code).aal, "aal2")
        fourth, _ = new()
        fourth.sign_in(addr, PASSWORD)
        self.assert_code("mfa_verification_failed", lambda: fourth.verify_totp(code))

        self.assertEqual(len(other.regenerate_recovery_codes()), 10)
        other.remove_factor(en.factor.id)
        self.assertEqual(other.factors().factors, [])
        self.assertIsNone(new()[0].sign_in(addr, PASSWORD).mfa)

    def test_mfa_webauthn_with_a_software_authenticator(self) -> None:
        addr = email("webauthn")
        c, _ = new()
        c.signup(addr, PASSWORD)
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
        first = other.begin_webauthn()
        self.assert_code("mfa_verification_failed", lambda: other.verify_webauthn(key.get(first, "https://evil.example")))
        options = other.begin_webauthn()
        challenge = options["publicKey"]["challenge"]
        self.assertTrue(isinstance(challenge, str) and challenge)
        self.assertNotEqual(challenge, first["publicKey"]["challenge"])
        up = other.verify_webauthn(key.get(options, LATCHD_URL))
        self.assertEqual((up.aal, up.session_id), ("aal2", r.tokens.session_id))
        held = other.tokens()
        assert held is not None
        self.assertEqual(held.access_token, up.access_token)
        self.assertNotEqual(held.refresh_token, aal1.refresh_token)
        self.assertEqual(claims(held.access_token)["amr"], ["pwd", "hwk", "mfa"])


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""LatchAdmin against the live latchd of tools/test-sdk.sh, whose
LATCH_OPERATOR_EMAILS lists py-ops@example.com. An operator's key counts only
when the email was verified before the key was created, and an autoconfirmed
signup records no verification: the operator resets its password through the
link in latchd's log (LATCH_MAIL_LOG_LINKS), which records it, and only then
creates its key."""

from __future__ import annotations

import datetime
import http.server
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.dirname(__file__))

from helpers import PASSWORD, Proxy, email, reset_token  # noqa: E402

from latch_client import Client, LatchAdmin, LatchError, models  # noqa: E402

OPS = "py-ops@example.com"
ADMIN_SCOPES = ["admin:users:read", "admin:users:write", "admin:webhooks:read", "admin:webhooks:write", "admin:events:read"]
# An argon2id hash of "imported password 1" (m=19456, t=2, p=1, salt
# "latch-sdk-admin!"): the standard library has no bcrypt.
IMPORTED_HASH = "$argon2id$v=19$m=19456,t=2,p=1$bGF0Y2gtc2RrLWFkbWluIQ$kV4tHe3XrQhfWDMPdEnAdkVS8tbfLAuJaH38z6s71YM"

PROXY: Proxy
ADMIN: LatchAdmin


def setUpModule() -> None:
    global PROXY, ADMIN
    PROXY = Proxy()
    with Client(PROXY.url) as c:
        c.sign_up(OPS, PASSWORD)
        c.api.forgot_password(models.ForgotPasswordRequest(email=OPS))
        c.api.reset_password(models.ResetPasswordRequest(token=reset_token(OPS), password=PASSWORD))
        c.sign_in(OPS, PASSWORD)
        key = c.create_api_key("ops", ADMIN_SCOPES)
    ADMIN = LatchAdmin(PROXY.url, api_key=key.key)


def tearDownModule() -> None:
    ADMIN.close()
    PROXY.close()


def sign_up(addr: str) -> str:
    with Client(PROXY.url) as c:
        r = c.sign_up(addr, PASSWORD)
        assert isinstance(r, models.SignupSession)
        return r.user.id


class TestAdmin(unittest.TestCase):
    def assert_code(self, code: str, f: object) -> None:
        assert callable(f)
        with self.assertRaises(LatchError) as cm:
            f()
        self.assertEqual(cm.exception.code, code)

    def test_users(self) -> None:
        prefix = f"py-adm-{time.time_ns()}-"
        addrs = [f"{prefix}{i}@example.com" for i in range(3)]
        for a in addrs:
            sign_up(a)
        page = ADMIN.list_users(email_prefix=prefix, limit=2)
        self.assertEqual(len(page.users), 2)
        self.assertIsNotNone(page.next_cursor)
        self.assertEqual([u.email for u in ADMIN.iter_users(email_prefix=prefix, limit=1)], addrs[::-1])

        uid = ADMIN.list_users(email=addrs[0]).users[0].id
        u = ADMIN.ban_user(uid, datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1), "fraud")
        self.assertTrue(u.banned)
        self.assertEqual(u.ban_reason, "fraud")
        with Client(PROXY.url) as c:
            self.assert_code("user_banned", lambda: c.sign_in(addrs[0], PASSWORD))
        self.assertFalse(ADMIN.unban_user(uid).banned)
        with Client(PROXY.url) as c:
            c.sign_in(addrs[0], PASSWORD)

        ADMIN.update_user(uid, models.AdminUserUpdate(app_metadata={"plan": "pro"}, user_metadata={"theme": "dark"}))
        d = ADMIN.get_user(uid)
        self.assertEqual((d.user.app_metadata or {}).get("plan"), "pro")
        self.assertEqual((d.user.user_metadata or {}).get("theme"), "dark")
        self.assertEqual(ADMIN.export_user(uid).user.id, uid)
        ADMIN.end_sessions(uid)
        self.assertEqual(ADMIN.get_user(uid).sessions, [])
        ADMIN.remove_factors(uid)
        self.assertTrue(ADMIN.impersonate(uid).access_token)

        imported = email("imported")
        res = ADMIN.import_users([models.ImportUser(email=imported, password_hash=IMPORTED_HASH)])
        self.assertEqual(res.created, 1, res)
        with Client(PROXY.url) as c:
            c.sign_in(imported, "imported password 1")
        emails = [u.email for u in ADMIN.export_users(limit=2)]
        self.assertIn(imported, emails)
        self.assertGreaterEqual(len(emails), 5)

        new_id = res.results[0].id
        assert new_id is not None
        ADMIN.delete_user(new_id, delete_sole_owned_orgs=True)
        self.assert_code("not_found", lambda: ADMIN.get_user(new_id))

    def test_webhooks_and_events(self) -> None:
        got: list[str] = []

        class Receiver(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                got.append(self.headers.get("webhook-id", ""))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        rcv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=rcv.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{rcv.server_address[1]}/hook"
            wh = ADMIN.create_webhook(models.CreateWebhookRequest(url=url, event_types=["user.created"]))
            self.assertTrue(wh.secret.startswith("whsec_"))
            self.assertIn(wh.id, [w.id for w in ADMIN.list_webhooks().webhooks])
            self.assertEqual(ADMIN.update_webhook(wh.id, models.UpdateWebhookRequest(description="billing")).description, "billing")
            self.assertEqual(ADMIN.get_webhook(wh.id).description, "billing")
            ADMIN.test_webhook(wh.id)
            deliveries: list[models.WebhookDelivery] = []
            for _ in range(100):
                deliveries = ADMIN.list_deliveries(wh.id).deliveries
                if deliveries:
                    break
                time.sleep(0.2)
            self.assertTrue(deliveries, "no delivery of the test message")
            self.assertTrue(got)
            ADMIN.redeliver(wh.id, deliveries[0].message_id)
            self.assertNotEqual(ADMIN.rotate_webhook_secret(wh.id).secret, wh.secret)
            ADMIN.delete_webhook(wh.id)
            self.assert_code("not_found", lambda: ADMIN.get_webhook(wh.id))
        finally:
            rcv.shutdown()
            rcv.server_close()

        # The feed, two events a page: every user.created of three new users, in order.
        ids = [sign_up(email("event")) for _ in range(3)]
        seqs: dict[str, int] = {}
        for e in ADMIN.iter_events(types=["user.created"], limit=2):
            self.assertIsInstance(e, models.UserCreatedEvent)
            assert isinstance(e, models.UserCreatedEvent)
            seqs[e.data.user_id] = e.seq
        mine = [seqs[i] for i in ids]
        self.assertEqual(mine, sorted(mine))
        page = ADMIN.list_events(after=mine[1], types=["user.created"])
        self.assertIn(mine[2], [e.seq for e in page.events])
        self.assertTrue(all(e.seq > mine[1] for e in page.events))

    def test_non_operator_key_is_refused(self) -> None:
        with Client(PROXY.url) as c:
            c.sign_up(email("notops"), PASSWORD)
            key = c.create_api_key("not ops", ADMIN_SCOPES)
        with LatchAdmin(PROXY.url, api_key=key.key) as a:
            self.assert_code("insufficient_permissions", lambda: a.list_users())
            self.assert_code("insufficient_permissions", lambda: next(a.iter_events()))


if __name__ == "__main__":
    unittest.main()

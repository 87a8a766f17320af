"""Helpers of the SDK tests: the live latchd (LATCHD_URL, LATCHD_LOG, started
by tools/test-sdk.sh) and a recording proxy in front of it that can answer
for latchd (429, 503, 500) or drop the connection, so a test sees every
request the SDK sent, and only those."""

from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import json
import os
import re
import secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

LATCHD_URL = os.environ.get("LATCHD_URL", "")
LATCHD_LOG = os.environ.get("LATCHD_LOG", "")
if not LATCHD_URL or not LATCHD_LOG:
    raise RuntimeError("LATCHD_URL and LATCHD_LOG must be set: run the tests with tools/test-sdk.sh (make test-sdk)")

PASSWORD = "correct horse battery staple"


def email(what: str) -> str:
    return f"py-{what}-{uuid.uuid4().hex[:8]}@example.com"


@dataclass
class Seen:
    method: str
    path: str
    auth: str
    at: float
    status: int = 0


@dataclass
class Answer:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    delay: float = 0.0


class Proxy:
    """Forwards to latchd and records every request; rule(seen) may answer instead."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.rule: Callable[[Seen], Answer | None] = lambda s: None
        self._mu = threading.Lock()
        target = urlsplit(LATCHD_URL)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with proxy._mu:
                    proxy._open.add(self.connection)

            def finish(self) -> None:
                with proxy._mu:
                    proxy._open.discard(self.connection)
                super().finish()

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                s = Seen(self.command, self.path.split("?")[0], self.headers.get("Authorization", ""), time.time())
                with proxy._mu:
                    proxy.seen.append(s)
                a = proxy.rule(s)
                if a is not None and a.drop:
                    s.status = -1
                    self.close_connection = True
                    self.connection.close()
                    return
                if a is not None and a.status:
                    s.status = a.status
                    code = {429: "rate_limited", 503: "unavailable"}.get(a.status, "internal")
                    out = json.dumps({"error": code, "message": "injected by the test proxy", "request_id": "proxy"}).encode()
                    self.send_response(a.status)
                    for k, v in {"Content-Type": "application/json", "Content-Length": str(len(out)), **a.headers}.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(out)
                    return
                if a is not None and a.delay:
                    time.sleep(a.delay)
                conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port or 80, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                r = conn.getresponse()
                data = r.read()
                s.status = r.status
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _any

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[Any, Any]:
                conn = super().get_request()
                with proxy._mu:
                    proxy._accepted += 1
                return conn

        self._accepted = 0
        self._open: set[socket.socket] = set()
        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self, method: str, path: str) -> int:
        with self._mu:
            return sum(1 for s in self.seen if s.method == method and s.path == path)

    def since(self, n: int) -> list[Seen]:
        with self._mu:
            return list(self.seen[n:])

    def total(self) -> int:
        with self._mu:
            return len(self.seen)

    def connections(self) -> int:
        """How many TCP connections the proxy has accepted."""
        with self._mu:
            return self._accepted

    def close_connections(self) -> None:
        """Closes every client connection from the proxy's side, as a server
        closes idle keep-alive connections."""
        with self._mu:
            conns = list(self._open)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Clock:
    """Real time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def reset_token(to: str, timeout: float = 15.0) -> str:
    """Waits for the reset mail to `to` in latchd's log and returns its token."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(LATCHD_LOG, encoding="utf-8") as f:
            for line in reversed(f.read().splitlines()):
                if f"to={to} " in line:
                    mo = re.search(r"reset-password#token=([A-Za-z0-9_-]+)", line)
                    if mo:
                        return mo.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no reset mail to {to} in the latchd log within {timeout}s")


def otp_mail(to: str, timeout: float = 15.0) -> tuple[str, str | None]:
    """Waits for the sign-in mail to `to` in latchd's log (which shows it:
    LATCH_MAIL_LOG_LINKS=true) and returns its code and its link's token
    (None when it has no link)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(LATCHD_LOG, encoding="utf-8") as f:
            for line in reversed(f.read().splitlines()):
                if f"to={to} " in line:
                    mo = re.search(r"sign-in code is:(?:\\n|\s)*([0-9]{6})", line)
                    if mo:
                        tok = re.search(r"token=([A-Za-z0-9_-]{43})", line)
                        return mo.group(1), tok.group(1) if tok else None
        time.sleep(0.2)
    raise AssertionError(f"no sign-in mail to {to} in the latchd log within {timeout}s")


def refresh_lines() -> int:
    """latchd's access-log lines of POST /auth/refresh."""
    with open(LATCHD_LOG, encoding="utf-8") as f:
        return sum(1 for line in f if "path=/auth/refresh " in line)


# A software WebAuthn authenticator, as internal/testutil/webauthn.go: one
# P-256 credential (Debian's python3-cryptography), "none" attestation, user
# present and verified, not backup-eligible.

def _cbor(v: object) -> bytes:
    """Integers, text, bytes, and maps given as (key, value) pairs in canonical order."""
    def head(major: int, n: int) -> bytes:
        return bytes([major << 5 | n]) if n < 24 else bytes([major << 5 | 24, n]) if n < 256 else bytes([major << 5 | 25]) + n.to_bytes(2, "big")
    if isinstance(v, int):
        return head(0, v) if v >= 0 else head(1, -1 - v)
    if isinstance(v, str):
        return head(3, len(v.encode())) + v.encode()
    if isinstance(v, bytes):
        return head(2, len(v)) + v
    assert isinstance(v, list)
    return head(5, len(v)) + b"".join(_cbor(k) + _cbor(x) for k, x in v)


def _b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _unb64url(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class SoftAuthenticator:
    """create and get answer navigator.credentials.create() and .get() for a
    ceremony's options ({"publicKey": ...}) as a browser on origin would."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._cred_id = secrets.token_bytes(16)
        self._user = b""
        self._count = 0

    def _credential(self, client_data: bytes, response: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": _b64url(self._cred_id), "rawId": _b64url(self._cred_id), "type": "public-key",
            "authenticatorAttachment": "platform", "clientExtensionResults": {},
            "response": {"clientDataJSON": _b64url(client_data), **response},
        }

    @staticmethod
    def _client_data(typ: str, challenge: str, origin: str) -> bytes:
        return json.dumps({"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": False}).encode()

    def create(self, options: dict[str, Any], origin: str) -> dict[str, Any]:
        pk = options["publicKey"]
        self._user = _unb64url(pk["user"]["id"])
        q = self._key.public_key().public_numbers()
        cose = _cbor([(1, 2), (3, -7), (-1, 1), (-2, q.x.to_bytes(32, "big")), (-3, q.y.to_bytes(32, "big"))])
        auth_data = (
            hashlib.sha256(pk["rp"]["id"].encode()).digest() + bytes([0x45]) + self._count.to_bytes(4, "big")
            + bytes(16) + len(self._cred_id).to_bytes(2, "big") + self._cred_id + cose
        )
        att = _cbor([("fmt", "none"), ("attStmt", []), ("authData", auth_data)])
        cd = self._client_data("webauthn.create", pk["challenge"], origin)
        return self._credential(cd, {"attestationObject": _b64url(att), "transports": ["internal"]})

    def get(self, options: dict[str, Any], origin: str) -> dict[str, Any]:
        pk = options["publicKey"]
        self._count += 1
        auth_data = hashlib.sha256(pk["rpId"].encode()).digest() + bytes([0x05]) + self._count.to_bytes(4, "big")
        cd = self._client_data("webauthn.get", pk["challenge"], origin)
        sig = self._key.sign(auth_data + hashlib.sha256(cd).digest(), ec.ECDSA(hashes.SHA256()))  # DER, as WebAuthn wants
        return self._credential(cd, {
            "authenticatorData": _b64url(auth_data), "signature": _b64url(sig), "userHandle": _b64url(self._user),
        })

"""HTTP/1.1 with keep-alive to one Latch origin, in the standard library
(http.client): a small pool of connections, each used by one request at a
time and returned for reuse once its answer has been read, so a client opens
at most as many connections as it has requests in flight at once (one per
calling thread)."""

from __future__ import annotations

import http.client
import os
import select
import ssl
import threading
import time
import urllib.parse
from typing import Mapping

from .errors import NetworkError

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})

_Conn = http.client.HTTPConnection


class Closed(RuntimeError):
    """Raised by a request on a closed client."""

    def __init__(self) -> None:
        super().__init__("latch: the client is closed")


class Pool:
    """Connections to the origin of base_url, reused across requests.

    A connection is taken for one request and put back once the answer has
    been read in full; up to max_idle wait for reuse, each for at most
    idle_timeout seconds (below the usual server idle timeouts, so a server
    rarely closes one just as it is reused). One that the server closed while
    idle is noticed before it is used. A request that fails on a reused
    connection before any answer is sent again once on a new connection if
    its method is idempotent; other failures raise NetworkError.
    """

    def __init__(self, base_url: str, *, max_idle: int = 64, idle_timeout: float = 30.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        u = urllib.parse.urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"latch: base_url must be an http or https URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._https = u.scheme == "https"
        self._host = u.hostname
        self._port = u.port or (443 if self._https else 80)
        self._prefix = u.path.rstrip("/")
        self._ssl = ssl_context
        self._max_idle = max_idle
        self._idle_timeout = idle_timeout
        self._mu = threading.Lock()
        self._idle: list[tuple[_Conn, float]] = []
        self._pid = os.getpid()
        self._closed = False
        self.opened = 0
        """How many connections this pool has opened (for tests and metrics)."""

    def _new(self, timeout: float) -> _Conn:
        with self._mu:
            self.opened += 1
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=self._ssl)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _take(self) -> _Conn | None:
        """An idle connection still open, or None."""
        now = time.monotonic()
        while True:
            with self._mu:
                if self._closed:
                    raise Closed()
                if self._pid != os.getpid():  # forked: the sockets belong to the parent
                    self._idle, self._pid = [], os.getpid()
                if not self._idle:
                    return None
                conn, since = self._idle.pop()
            if now - since <= self._idle_timeout and not _dropped(conn):
                return conn
            conn.close()

    def _give(self, conn: _Conn) -> None:
        with self._mu:
            if not self._closed and self._pid == os.getpid() and len(self._idle) < self._max_idle and conn.sock is not None:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()

    def request(self, method: str, path: str, headers: Mapping[str, str], body: bytes | None,
                timeout: float) -> tuple[int, dict[str, str], bytes]:
        """Sends a request for path (with its query) and returns the status, the
        headers (keys in lower case) and the body. NetworkError when no answer
        came within timeout seconds (for connecting, and for each read)."""
        target = self._prefix + path
        conn = self._take()
        reused = conn is not None
        while True:
            if conn is None:
                conn = self._new(timeout)
            try:
                conn.timeout = timeout
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
                conn.request(method, target, body=body, headers={"Accept": "application/json", **headers})
                res = conn.getresponse()
                data = res.read()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                stale = isinstance(e, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError))
                if reused and stale and method in _IDEMPOTENT:
                    conn, reused = None, False
                    continue
                raise NetworkError(method, self.base_url + path, e) from e
            out = res.status, {k.lower(): v for k, v in res.getheaders()}, data
            if res.will_close:
                conn.close()
            else:
                self._give(conn)
            return out

    def close(self) -> None:
        """Closes the idle connections; those in use close when their request ends. Later requests raise."""
        with self._mu:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()


def _dropped(conn: _Conn) -> bool:
    """Whether an idle connection was closed by the server (readable while idle: EOF, or a stray byte)."""
    if conn.sock is None:
        return True
    try:
        p = select.poll()
        p.register(conn.sock, select.POLLIN)
        return bool(p.poll(0))
    except (OSError, ValueError):
        return True

"""Where the client keeps its tokens: in memory, or in a file that several
processes of one user share."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from typing import Iterator, Protocol, runtime_checkable


@dataclass(frozen=True)
class Tokens:
    """What the client keeps of a session (or of an exchanged token). Times
    are seconds since the epoch, on the client's clock."""

    access_token: str
    expires_at: float
    issued_at: float = 0.0
    refresh_token: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    scope: str | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> Tokens | None:
        """The tokens of raw, or None when raw does not hold any."""
        try:
            d = json.loads(raw)
            return cls(
                access_token=str(d["access_token"]),
                expires_at=float(d["expires_at"]),
                issued_at=float(d.get("issued_at") or 0.0),
                refresh_token=d.get("refresh_token"),
                session_id=d.get("session_id"),
                user_id=d.get("user_id"),
                scope=d.get("scope"),
            )
        except (ValueError, KeyError, TypeError):
            return None


class TokenStore(Protocol):
    """Keeps the tokens of one session. load returns None when there are none."""

    def load(self) -> Tokens | None: ...

    def save(self, tokens: Tokens) -> None: ...

    def clear(self) -> None: ...


@runtime_checkable
class TokenLocker(Protocol):
    """A TokenStore shared by several processes also locks across them: the
    client refreshes while holding the lock, after re-reading the store."""

    def lock(self) -> contextlib.AbstractContextManager[None]: ...


@runtime_checkable
class StoreCheck(Protocol):
    """A TokenStore that can tell, before Latch is asked to open a session,
    whether a save would fail: check raises (an OSError) if it would. The
    client checks before sign-up, sign-in and factor verifications, so a
    broken store does not leave a session open on the server and lost here."""

    def check(self) -> None: ...


class MemoryStore:
    """Keeps the tokens in this process: the default."""

    def __init__(self) -> None:
        self._t: Tokens | None = None
        self._mu = threading.Lock()

    def load(self) -> Tokens | None:
        with self._mu:
            return self._t

    def save(self, tokens: Tokens) -> None:
        with self._mu:
            self._t = tokens

    def clear(self) -> None:
        with self._mu:
            self._t = None


class FileStore:
    """Keeps the tokens in a file readable by its owner only, written
    atomically. Processes sharing the file share one session: the client
    refreshes under an exclusive fcntl lock on PATH.lock, after re-reading
    the file, so a refresh token is never spent twice. A leading ``~`` of
    path is expanded to the user's home directory."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.expanduser(os.fspath(path))
        self._thread_lock = threading.Lock()

    def check(self) -> None:
        """Raises OSError unless a save can succeed: a file can be created
        (and removed) in the directory of path, and path is not a directory."""
        if os.path.isdir(self.path):
            raise IsADirectoryError(f"latch: the token file {self.path} is a directory")
        fd, tmp = tempfile.mkstemp(prefix=".latch-check-", dir=os.path.dirname(os.path.abspath(self.path)))
        os.close(fd)
        os.unlink(tmp)

    def load(self) -> Tokens | None:
        try:
            with open(self.path, encoding="utf-8") as f:
                return Tokens.from_json(f.read())
        except FileNotFoundError:
            return None

    def save(self, tokens: Tokens) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(prefix=".latch-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(tokens.to_json())
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Holds an exclusive lock on PATH.lock across processes (and threads)."""
        with self._thread_lock:
            fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

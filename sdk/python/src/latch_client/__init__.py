"""Latch client: typed from openapi.yaml, stays logged in.

    from latch_client import Client, FileStore
    c = Client("http://127.0.0.1:8080", store=FileStore("~/.latch-tokens.json"))
    c.login("ada@example.com", "correct horse battery staple")
    print(c.me().email)
"""

from . import models
from .client import Client, LogoutScope, RefreshPolicy, RetryPolicy, SignedIn, SignInResult, SignedOut, TokenRefreshed
from .errors import LatchError, NotLoggedInError, RefreshBackoffError, SessionEndedError, SessionEndReason
from .store import FileStore, MemoryStore, TokenLocker, Tokens, TokenStore

__all__ = [
    "Client", "FileStore", "LatchError", "LogoutScope", "MemoryStore", "NotLoggedInError", "RefreshBackoffError",
    "RefreshPolicy", "RetryPolicy", "SessionEndReason", "SessionEndedError", "SignInResult", "SignedIn", "SignedOut",
    "TokenLocker", "TokenRefreshed", "TokenStore", "Tokens", "models",
]

"""Latch client: typed from openapi.yaml, stays logged in.

    from latch_client import Client, FileStore
    with Client("http://127.0.0.1:8080", store=FileStore("~/.latch-tokens.json")) as c:
        r = c.sign_in("ada@example.com", "correct horse battery staple")
        if r.mfa is not None:
            c.mfa.verify_totp(input("code: "))
        print(c.me().email)
"""

from . import models
from .admin import LatchAdmin
from .client import (
    MFA, Client, Event, InitialSession, LogoutScope, ProviderSignIn, RefreshPolicy, RetryPolicy, SignedIn, SignedOut,
    SignInResult, TokenRefreshed,
)
from .errors import (
    ERROR_CODES, LatchClientError, LatchError, NetworkError, NotLoggedInError, RefreshBackoffError, SessionEndedError,
    SessionEndReason, StorageError,
)
from .models import ErrorCode
from .store import FileStore, MemoryStore, StoreCheck, TokenLocker, Tokens, TokenStore

__all__ = [
    "ERROR_CODES", "Client", "ErrorCode", "Event", "FileStore", "InitialSession", "LatchAdmin", "LatchClientError", "LatchError",
    "LogoutScope", "MFA", "MemoryStore", "NetworkError", "NotLoggedInError", "ProviderSignIn", "RefreshBackoffError", "RefreshPolicy",
    "RetryPolicy", "SessionEndReason", "SessionEndedError", "SignInResult", "SignedIn", "SignedOut", "StorageError",
    "StoreCheck", "TokenLocker", "TokenRefreshed", "TokenStore", "Tokens", "models",
]

"""The operators' API (``LatchAdmin``): the users of the deployment, its
webhooks and its outbound events, called by a backend with an operator's
personal API key. See docs/admin.md, docs/webhooks.md and docs/events.md."""

from __future__ import annotations

import datetime
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

from . import models as m
from .api import API, Auth
from .client import Client, RetryPolicy


class LatchAdmin:
    """Sends an operator's personal API key (``X-API-Key``) on every request;
    no user session is involved. The key's owner must be listed in
    ``LATCH_OPERATOR_EMAILS`` and have verified that email before the key was
    created, and the key must hold the admin scopes the operation needs
    (``admin:users:read``, ``admin:users:write``, ``admin:webhooks:read``,
    ``admin:webhooks:write``, ``admin:events:read``): Latch refuses anyone
    else with LatchError ``insufficient_permissions``. Errors are those of
    Client: LatchError with its stable code, NetworkError. 429 and 503 are
    retried as ``retry_policy`` says. ``close()`` (or ``with``) closes the
    connections.

    ``api`` has every operation of openapi.yaml, typed, sending the key."""

    def __init__(self, base_url: str, *, api_key: str, timeout: float = 30.0, retry_policy: RetryPolicy = RetryPolicy()) -> None:
        if not api_key:
            raise ValueError("LatchAdmin needs an api_key")
        self._key = api_key
        self._c = Client(base_url, timeout=timeout, retry_policy=retry_policy)
        self.api = API(self._send)
        """Every operation of openapi.yaml, typed, with the operator's key."""

    def close(self) -> None:
        """Closes the connections."""
        self._c.close()

    def __enter__(self) -> LatchAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, path_params: dict[str, str], query: dict[str, Any], body: Any, auth: Auth) -> tuple[int, Any]:
        for name, value in path_params.items():
            path = path.replace("{" + name + "}", urllib.parse.quote(value, safe=""))
        # A list is one comma-separated value (the spec's form style, explode: false).
        q = {k: ("true" if v is True else "false" if v is False else ",".join(str(x) for x in v) if isinstance(v, list) else str(v))
             for k, v in query.items() if v is not None}
        target = path + ("?" + urllib.parse.urlencode(q) if q else "")
        headers = {"X-API-Key": self._key}
        data: bytes | None = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        return self._c._result(*self._c._retrying(method, target, headers, data))

    # ---- users ---------------------------------------------------------------

    def list_users(self, cursor: str | None = None, *, limit: int | None = None, email: str | None = None,
                   email_prefix: str | None = None, org_id: str | None = None, external_id: str | None = None,
                   created_after: str | None = None, created_before: str | None = None,
                   banned: bool | None = None) -> m.AdminUserList:
        """One page of the users matching every filter given, newest first;
        pass its ``next_cursor`` as ``cursor`` for the next (None on the last)."""
        return self.api.list_admin_users(limit=limit, cursor=cursor, email=email, email_prefix=email_prefix, org_id=org_id,
                                         external_id=external_id, created_after=created_after,
                                         created_before=created_before, banned=banned)

    def iter_users(self, *, limit: int | None = None, email: str | None = None, email_prefix: str | None = None,
                   org_id: str | None = None, external_id: str | None = None, created_after: str | None = None,
                   created_before: str | None = None, banned: bool | None = None) -> Iterator[m.AdminUser]:
        """Every user matching the filters, page after page (``limit`` a page)."""
        cursor: str | None = None
        while True:
            page = self.list_users(cursor, limit=limit, email=email, email_prefix=email_prefix, org_id=org_id,
                                   external_id=external_id, created_after=created_after,
                                   created_before=created_before, banned=banned)
            yield from page.users
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def get_user(self, user_id: str) -> m.AdminUserDetail:
        """The user with its sessions, factors, keys and organizations. LatchError not_found when none."""
        return self.api.get_admin_user(user_id)

    def update_user(self, user_id: str, update: m.AdminUserUpdate) -> m.AdminUser:
        """Applies the fields set (email, email_verified, ban, app_metadata, user_metadata)."""
        return self.api.update_admin_user(user_id, update)

    def ban_user(self, user_id: str, until: datetime.datetime | str, reason: str | None = None) -> m.AdminUser:
        """Bans the user until ``until`` (an aware datetime or RFC 3339): Latch
        ends its sessions and refuses it with user_banned."""
        at = until if isinstance(until, str) else until.isoformat()
        return self.update_user(user_id, m.AdminUserUpdate(banned_until=at, ban_reason=reason))

    def unban_user(self, user_id: str) -> m.AdminUser:
        """Lifts the user's ban."""
        return self.update_user(user_id, m.AdminUserUpdate(extra={"banned_until": None}))

    def delete_user(self, user_id: str, *, delete_sole_owned_orgs: bool = False) -> None:
        """Deletes the user; ``delete_sole_owned_orgs`` also the organizations
        it alone owns (else Latch refuses such a user with conflict)."""
        self.api.delete_admin_user(user_id, delete_sole_owned_orgs=True if delete_sole_owned_orgs else None)

    def end_sessions(self, user_id: str) -> None:
        """Ends every session of the user."""
        self.api.revoke_admin_user_sessions(user_id)

    def remove_factors(self, user_id: str, factor_id: str | None = None) -> None:
        """Removes the user's factor ``factor_id``, or every one (recovery codes too) without it."""
        if factor_id is not None:
            self.api.delete_admin_user_factor(user_id, factor_id)
        else:
            self.api.delete_admin_user_factors(user_id)

    def export_user(self, user_id: str) -> m.AdminUserExport:
        """Everything Latch holds about the user."""
        return self.api.export_admin_user(user_id)

    def import_users(self, users: list[m.ImportUser]) -> m.ImportUsersResult:
        """Creates the users with their password hashes; the result says, user by user, what was created or refused."""
        return self.api.import_users(m.ImportUsersRequest(users=users))

    def export_users(self, *, limit: int | None = None) -> Iterator[m.ExportedUser]:
        """Every user of the deployment in export form, page after page."""
        cursor: str | None = None
        while True:
            page = self.api.export_users(limit=limit, cursor=cursor)
            yield from page.users
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def impersonate(self, user_id: str) -> m.ImpersonationToken:
        """A short-lived access token acting as the user (Latch records who did)."""
        return self.api.impersonate_user(user_id)

    # ---- webhooks ------------------------------------------------------------

    def create_webhook(self, req: m.CreateWebhookRequest) -> m.WebhookEndpointWithSecret:
        """Creates an operators' endpoint; its signing ``secret`` is returned this once."""
        return self.api.create_admin_webhook(req)

    def list_webhooks(self, cursor: str | None = None) -> m.WebhookEndpointList:
        """One page of the operators' endpoints."""
        return self.api.list_admin_webhooks(cursor=cursor)

    def get_webhook(self, webhook_id: str) -> m.WebhookEndpoint:
        """An endpoint."""
        return self.api.get_admin_webhook(webhook_id)

    def update_webhook(self, webhook_id: str, req: m.UpdateWebhookRequest) -> m.WebhookEndpoint:
        """Changes the fields set."""
        return self.api.update_admin_webhook(webhook_id, req)

    def delete_webhook(self, webhook_id: str) -> None:
        """Deletes an endpoint."""
        self.api.delete_admin_webhook(webhook_id)

    def rotate_webhook_secret(self, webhook_id: str) -> m.WebhookSecret:
        """Gives the endpoint a new signing secret, returned this once."""
        return self.api.rotate_admin_webhook_secret(webhook_id)

    def test_webhook(self, webhook_id: str) -> None:
        """Queues a test message to the endpoint."""
        self.api.test_admin_webhook(webhook_id)

    def list_deliveries(self, webhook_id: str, cursor: str | None = None) -> m.WebhookDeliveryList:
        """One page of the endpoint's delivery attempts, newest first."""
        return self.api.list_admin_webhook_deliveries(webhook_id, cursor=cursor)

    def redeliver(self, webhook_id: str, message_id: str) -> None:
        """Queues the message to the endpoint once more."""
        self.api.redeliver_admin_webhook_message(webhook_id, message_id)

    # ---- events --------------------------------------------------------------

    def list_events(self, *, after: int = 0, types: list[m.OutboundEventType] | None = None, org_id: str | None = None,
                    limit: int | None = None) -> m.OutboundEventPage:
        """One page of the outbound events feed after the seq ``after``, oldest
        first; pass its ``next_cursor`` as the next ``after``."""
        return self.api.list_outbound_events(after=after or None, limit=limit, types=types or None, org_id=org_id)

    def iter_events(self, *, after: int = 0, types: list[m.OutboundEventType] | None = None, org_id: str | None = None,
                    limit: int | None = None) -> Iterator[m.OutboundEvent]:
        """The feed's events, following ``next_cursor`` while pages have more;
        ends at the feed's end (poll again from the last event's ``seq``)."""
        while True:
            page = self.list_events(after=after, types=types, org_id=org_id, limit=limit)
            yield from page.events
            if not page.has_more or page.next_cursor == after:
                return
            after = page.next_cursor

import type { Client } from 'openapi-fetch';
import { LatchClient, type RetryPolicy } from './client.js';
import type { components, operations, paths } from './schema.gen.js';

type S = components['schemas'];
export type AdminUser = S['AdminUser'];
export type AdminUserDetail = S['AdminUserDetail'];
export type AdminUserList = S['AdminUserList'];
export type AdminUserUpdate = S['AdminUserUpdate'];
export type AdminUserExport = S['AdminUserExport'];
export type ImportUser = S['ImportUser'];
export type ImportUsersResult = S['ImportUsersResult'];
export type ExportedUser = S['ExportedUser'];
export type ImpersonationToken = S['ImpersonationToken'];
export type WebhookEndpoint = S['WebhookEndpoint'];
export type WebhookEndpointWithSecret = S['WebhookEndpointWithSecret'];
export type WebhookEndpointList = S['WebhookEndpointList'];
export type CreateWebhookRequest = S['CreateWebhookRequest'];
export type UpdateWebhookRequest = S['UpdateWebhookRequest'];
export type WebhookSecret = S['WebhookSecret'];
export type WebhookDeliveryList = S['WebhookDeliveryList'];
export type OutboundEvent = S['OutboundEvent'];
export type OutboundEventPage = S['OutboundEventPage'];
export type OutboundEventType = S['OutboundEventType'];

/** UserFilter narrows listUsers (every field together); `limit` is the page size. */
export type UserFilter = Omit<NonNullable<operations['listAdminUsers']['parameters']['query']>, 'cursor'>;

/** EventFilter: events after the seq `after` (0: the oldest), of `types` (all when absent), of the organization `orgId`, `limit` a page. */
export interface EventFilter {
  after?: number;
  types?: OutboundEventType[];
  orgId?: string;
  limit?: number;
}

export interface LatchAdminOptions {
  /** Latch's base URL, such as https://auth.example.com. */
  baseUrl: string;
  /** An operator's personal API key with the admin scopes, sent as X-API-Key on every request. */
  apiKey: string;
  /** The fetch to use. Default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Timeout of one request in ms (each retry has its own). Default 30 000. */
  timeoutMs?: number;
  /** How 429 and 503 answers are retried, as for LatchClient. */
  retry?: RetryPolicy;
}

/**
 * LatchAdmin is the operators' API, for a backend: the users of the
 * deployment, its webhooks and its outbound events (docs/admin.md,
 * docs/webhooks.md, docs/events.md). It sends an operator's personal API key
 * (a user listed in LATCH_OPERATOR_EMAILS, whose email was verified before
 * the key was created) on every request; no user session is involved. Latch
 * refuses anyone else with LatchError `insufficient_permissions`. Methods
 * throw LatchError (with the stable code) or NetworkError like LatchClient's.
 */
export class LatchAdmin {
  /** The typed client of every operation, sending the key. */
  readonly api: Client<paths>;
  private readonly client: LatchClient;

  constructor(opts: LatchAdminOptions) {
    if (!opts.apiKey) throw new Error('latch: LatchAdmin needs an apiKey');
    this.client = new LatchClient({ baseUrl: opts.baseUrl, storage: 'memory', crossTab: false, fetch: opts.fetch, timeoutMs: opts.timeoutMs, retry: opts.retry });
    this.api = this.client.api;
    const key = opts.apiKey;
    this.api.use({
      onRequest({ request }) {
        request.headers.set('X-API-Key', key);
        return request;
      },
    });
  }

  private unwrap<T>(r: { data?: T; error?: unknown; response: Response }): Promise<T> {
    return this.client.unwrap(r);
  }

  // ---- users ---------------------------------------------------------------

  /** listUsers returns one page of users, newest first; pass its `next_cursor` as `cursor` for the next (absent on the last). */
  async listUsers(filter: UserFilter = {}, cursor?: string): Promise<AdminUserList> {
    return this.unwrap(await this.api.GET('/admin/users', { params: { query: { ...filter, cursor } } }));
  }

  /** iterUsers yields every user matching filter, page after page. */
  async *iterUsers(filter: UserFilter = {}): AsyncGenerator<AdminUser> {
    let cursor: string | undefined;
    do {
      const page = await this.listUsers(filter, cursor);
      yield* page.users;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  /** getUser returns a user with its sessions, factors, keys and organizations; LatchError `not_found` when none. */
  async getUser(userId: string): Promise<AdminUserDetail> {
    return this.unwrap(await this.api.GET('/admin/users/{user_id}', { params: { path: { user_id: userId } } }));
  }

  /** updateUser applies the fields present (email, email_verified, ban, app_metadata, user_metadata). */
  async updateUser(userId: string, update: AdminUserUpdate): Promise<AdminUser> {
    return this.unwrap(await this.api.PATCH('/admin/users/{user_id}', { params: { path: { user_id: userId } }, body: update }));
  }

  /** banUser bans the user until `until` (Latch ends its sessions, refuses it with `user_banned`), recording `reason`. */
  async banUser(userId: string, until: Date | string, reason?: string): Promise<AdminUser> {
    const banned_until = typeof until === 'string' ? until : until.toISOString();
    return this.updateUser(userId, reason === undefined ? { banned_until } : { banned_until, ban_reason: reason });
  }

  /** unbanUser lifts the user's ban. */
  async unbanUser(userId: string): Promise<AdminUser> {
    return this.updateUser(userId, { banned_until: null });
  }

  /** deleteUser deletes the user; `deleteSoleOwnedOrgs` also the organizations it alone owns (else Latch refuses with `conflict`). */
  async deleteUser(userId: string, opts: { deleteSoleOwnedOrgs?: boolean } = {}): Promise<void> {
    const query = opts.deleteSoleOwnedOrgs ? { delete_sole_owned_orgs: true } : {};
    await this.unwrap(await this.api.DELETE('/admin/users/{user_id}', { params: { path: { user_id: userId }, query } }));
  }

  /** endSessions ends every session of the user. */
  async endSessions(userId: string): Promise<void> {
    await this.unwrap(await this.api.DELETE('/admin/users/{user_id}/sessions', { params: { path: { user_id: userId } } }));
  }

  /** removeFactors removes the user's factor `factorId`, or all of them (recovery codes too) without it. */
  async removeFactors(userId: string, factorId?: string): Promise<void> {
    if (factorId !== undefined) {
      await this.unwrap(await this.api.DELETE('/admin/users/{user_id}/factors/{factor_id}', { params: { path: { user_id: userId, factor_id: factorId } } }));
      return;
    }
    await this.unwrap(await this.api.DELETE('/admin/users/{user_id}/factors', { params: { path: { user_id: userId } } }));
  }

  /** exportUser returns everything Latch holds about the user. */
  async exportUser(userId: string): Promise<AdminUserExport> {
    return this.unwrap(await this.api.GET('/admin/users/{user_id}/export', { params: { path: { user_id: userId } } }));
  }

  /** importUsers creates the users with their password hashes; the result says, user by user, what was created or refused. */
  async importUsers(users: ImportUser[]): Promise<ImportUsersResult> {
    return this.unwrap(await this.api.POST('/admin/users/import', { body: { users } }));
  }

  /** exportUsers yields every user of the deployment in export form, page after page. */
  async *exportUsers(opts: { limit?: number } = {}): AsyncGenerator<ExportedUser> {
    let cursor: string | undefined;
    do {
      const page = await this.unwrap(await this.api.GET('/admin/users/export', { params: { query: { limit: opts.limit, cursor } } }));
      yield* page.users;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  /** impersonate returns a short-lived access token acting as the user (Latch records who did). */
  async impersonate(userId: string): Promise<ImpersonationToken> {
    return this.unwrap(await this.api.POST('/admin/users/{user_id}/impersonate', { params: { path: { user_id: userId } } }));
  }

  // ---- webhooks ------------------------------------------------------------

  /** createWebhook creates an operators' endpoint; its signing `secret` is returned this once. */
  async createWebhook(req: CreateWebhookRequest): Promise<WebhookEndpointWithSecret> {
    return this.unwrap(await this.api.POST('/admin/webhooks', { body: req }));
  }

  /** listWebhooks returns one page of the operators' endpoints. */
  async listWebhooks(cursor?: string): Promise<WebhookEndpointList> {
    return this.unwrap(await this.api.GET('/admin/webhooks', { params: { query: { cursor } } }));
  }

  /** getWebhook returns an endpoint. */
  async getWebhook(webhookId: string): Promise<WebhookEndpoint> {
    return this.unwrap(await this.api.GET('/admin/webhooks/{webhook_id}', { params: { path: { webhook_id: webhookId } } }));
  }

  /** updateWebhook changes the fields present. */
  async updateWebhook(webhookId: string, req: UpdateWebhookRequest): Promise<WebhookEndpoint> {
    return this.unwrap(await this.api.PATCH('/admin/webhooks/{webhook_id}', { params: { path: { webhook_id: webhookId } }, body: req }));
  }

  /** deleteWebhook deletes an endpoint. */
  async deleteWebhook(webhookId: string): Promise<void> {
    await this.unwrap(await this.api.DELETE('/admin/webhooks/{webhook_id}', { params: { path: { webhook_id: webhookId } } }));
  }

  /** rotateWebhookSecret gives the endpoint a new signing secret, returned this once. */
  async rotateWebhookSecret(webhookId: string): Promise<WebhookSecret> {
    return this.unwrap(await this.api.POST('/admin/webhooks/{webhook_id}/secret/rotate', { params: { path: { webhook_id: webhookId } } }));
  }

  /** testWebhook queues a test message to the endpoint. */
  async testWebhook(webhookId: string): Promise<void> {
    await this.unwrap(await this.api.POST('/admin/webhooks/{webhook_id}/test', { params: { path: { webhook_id: webhookId } } }));
  }

  /** listDeliveries returns one page of the endpoint's delivery attempts, newest first. */
  async listDeliveries(webhookId: string, cursor?: string): Promise<WebhookDeliveryList> {
    return this.unwrap(await this.api.GET('/admin/webhooks/{webhook_id}/deliveries', { params: { path: { webhook_id: webhookId }, query: { cursor } } }));
  }

  /** redeliver queues the message to the endpoint once more. */
  async redeliver(webhookId: string, messageId: string): Promise<void> {
    await this.unwrap(await this.api.POST('/admin/webhooks/{webhook_id}/deliveries/{message_id}/redeliver', { params: { path: { webhook_id: webhookId, message_id: messageId } } }));
  }

  // ---- events --------------------------------------------------------------

  /** listEvents returns one page of the outbound events feed, oldest first; pass its `next_cursor` as the next `after`. */
  async listEvents(filter: EventFilter = {}): Promise<OutboundEventPage> {
    const query = { after: filter.after || undefined, types: filter.types?.length ? filter.types : undefined, org_id: filter.orgId, limit: filter.limit };
    return this.unwrap(await this.api.GET('/events', { params: { query }, querySerializer: { array: { style: 'form', explode: false } } }));
  }

  /**
   * iterEvents yields the feed's events matching filter, following
   * `next_cursor` while pages have more; it ends at the feed's end (poll
   * again later from the last event's `seq`).
   */
  async *iterEvents(filter: EventFilter = {}): AsyncGenerator<OutboundEvent> {
    let after = filter.after ?? 0;
    for (;;) {
      const page = await this.listEvents({ ...filter, after });
      yield* page.events;
      if (!page.has_more || page.next_cursor === after) return;
      after = page.next_cursor;
    }
  }
}

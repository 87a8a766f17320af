import createClient, { type Client } from 'openapi-fetch';
import { TabChannel, refreshLock, type RefreshLock, type TabMessage } from './coordination.js';
import { LatchError, NetworkError, NotLoggedInError, ProviderSignInError, RefreshBackoffError, SessionEndedError, errorFrom, isPermanent, parseRetryAfter, type ErrorBody, type SessionEndReason } from './errors.js';
import { operations, type OperationAuth } from './operations.gen.js';
import type { components, paths } from './schema.gen.js';
import { decodeTokens, encodeTokens, resolveStorage, type LockingStorage, type StorageLike, type StorageOption, type Tokens } from './storage.js';

export type Schemas = components['schemas'];
export type User = Schemas['User'];
export type TokenResponse = Schemas['TokenResponse'];
export type SignupPending = Schemas['SignupPending'];
export type SignupSession = Schemas['SignupSession'];
export type SignupResult = Schemas['SignupResult'];
export type Session = Schemas['Session'];
export type SessionList = Schemas['SessionList'];
export type ExchangeRequest = Schemas['ExchangeRequest'];
export type ExchangeResponse = Schemas['ExchangeResponse'];
export type CreateAPIKeyRequest = Schemas['CreateAPIKeyRequest'];
export type APIKeyWithSecret = Schemas['APIKeyWithSecret'];
export type MFAFactor = Schemas['MFAFactor'];
export type MFAFactorType = Schemas['MFAFactorType'];
export type MFAFactorList = Schemas['MFAFactorList'];
export type MFAPending = Schemas['MFAPending'];
export type TOTPEnrollment = Schemas['TOTPEnrollment'];
export type MFAEnrollment = Schemas['MFAEnrollment'];
export type WebAuthnCredential = Schemas['WebAuthnCredential'];
export type LogoutScope = NonNullable<NonNullable<paths['/auth/logout']['post']['parameters']['query']>['scope']>;

/**
 * SignInResult is what signIn opens: a session (already the client's) and
 * the second factor it waits for. `mfa` is null when none is needed; else it
 * lists the user's verified factors, any of which raises the session from
 * aal1 to aal2 (client.mfa.verifyTOTP, verifyRecoveryCode, verifyWebAuthn).
 * Until then operations that need aal2 throw LatchError `mfa_required`.
 */
export interface SignInResult {
  tokens: TokenResponse;
  mfa: MFAPending | null;
}

/**
 * SignInWithOtpRequest is what signInWithOtp asks for: a mail to `email`;
 * `createUser` creates the account on verification if none has the address
 * (default false); `redirectTo` is the page the mail's link opens, with
 * `token` added to its query (it must be listed in LATCH_OTP_REDIRECT_URLS).
 */
export interface SignInWithOtpRequest {
  email: string;
  createUser?: boolean;
  redirectTo?: string;
}

/**
 * VerifyOtpRequest is what verifyOtp takes: the email and the 6-digit code of
 * the mail, or the token of its link (the `token` query parameter of the
 * page the link opened).
 */
export type VerifyOtpRequest = { email: string; code: string } | { token: string };

/**
 * RefreshPolicy says how long before expiry an access token is renewed: the
 * shorter of `beforeMs` and `fraction` of the token's lifetime, plus a random
 * extra of up to `jitter` times that, drawn once per token. Within that margin
 * the token is still valid: calls go ahead with it while one renewal runs in
 * the background; only a call whose token has expired waits.
 */
export interface RefreshPolicy {
  /** Caps the margin. Default 60 000 (60 s). */
  beforeMs?: number;
  /** Share of the token's lifetime used as the margin. Default 0.2. */
  fraction?: number;
  /** Largest random extra, as a share of the margin. Default 0.1; 0 for none. */
  jitter?: number;
}

/**
 * RetryPolicy says how 429 and 503 answers are retried: 429 for any method
 * (the server did not act), 503 for idempotent methods only (GET, HEAD,
 * OPTIONS, PUT, DELETE, or an Idempotency-Key header). The wait is the larger
 * of Retry-After and an exponential backoff with jitter; a Retry-After above
 * `maxDelayMs` is not waited for. `baseDelayMs` and `maxDelayMs` also pace
 * renewals after a failed refresh or exchange.
 */
export interface RetryPolicy {
  /** Retries after the first attempt. Default 3; 0 disables them. */
  maxRetries?: number;
  /** Backoff of the first retry, doubled for each next. Default 250. */
  baseDelayMs?: number;
  /** Longest wait before one retry. Default 30 000. */
  maxDelayMs?: number;
}

export interface LatchClientOptions {
  /** Latch's base URL, e.g. https://auth.example.com. */
  baseUrl: string;
  /** Where tokens are kept. Default: localStorage in a browser, memory elsewhere. */
  storage?: StorageOption;
  /** Storage key (also names the cross-tab lock and channel). Default `latch:<baseUrl>`. */
  storageKey?: string;
  /** Coordinate refreshes with other tabs sharing the storage. Default true. */
  crossTab?: boolean;
  refresh?: RefreshPolicy;
  retry?: RetryPolicy;
  /**
   * Timeout of one request, in ms, from sending it to the end of its answer
   * (each retry has its own). Past it the call throws NetworkError with
   * `timedOut`. A caller's own `signal` still applies. Default 30 000.
   */
  timeoutMs?: number;
  /** Timeout of one refresh or exchange request, in ms. Default 15 000. */
  refreshTimeoutMs?: number;
  /** API-key mode: exchange this key at /auth/token for access tokens, renewed before they expire. */
  apiKey?: string;
  /** The exchange asked for in API-key mode (scopes, audience, expires_in); default: the key's application scopes, Latch's audience and lifetime. */
  exchange?: ExchangeRequest;
  /** The fetch to use. Default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Clock, ms since the epoch (tests). Default Date.now. */
  now?: () => number;
  /** Random numbers in [0, 1) for jitter (tests). Default Math.random. */
  random?: () => number;
  /**
   * Told when an event handler throws, with its event (and with
   * `initialSession` when the storage could not be read at start, which then
   * counts as empty); the client carries on either way. Default: console.error.
   */
  onHandlerError?: (error: unknown, event: keyof LatchEvents) => void;
}

/**
 * The events of a client. Each handler gets one object. `initialSession`
 * comes first, once per handler: no handler sees another event before it.
 */
export interface LatchEvents {
  /**
   * The client has read its storage at start: `tokens` is the session found
   * there, or null. A handler added later is called with it too, at once.
   */
  initialSession: { tokens: Tokens | null };
  /** A session opened (login, signup) or raised to aal2 (a verified second factor) here, or in another tab sharing the storage. */
  signedIn: { tokens: Tokens; user?: User; elsewhere: boolean };
  /** New tokens: rotated here, or adopted from another tab or process (`adopted`). */
  tokenRefreshed: { tokens: Tokens; adopted: boolean };
  /** The session ended; fired once per session. */
  signedOut: { reason: SessionEndReason; error?: unknown };
}

interface SessionEnd {
  reason: SessionEndReason;
  cause?: unknown;
  access?: string;
  refresh?: string;
  sessionId?: string;
  notified: boolean;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

// The operations by path template, as regular expressions.
const ROUTES = operations.map(([, method, path, auth]) => ({
  method,
  auth,
  re: new RegExp('^' + path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+') + '$'),
}));

function authOf(method: string, path: string): OperationAuth | undefined {
  return ROUTES.find((r) => r.method === method && r.re.test(path))?.auth;
}

function sleep(ms: number, signal?: AbortSignal | null): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * LatchClient calls Latch with the session's (or an API key's) credentials,
 * keeps them fresh and says when the session ends. `api` is the typed
 * openapi-fetch client of every operation of openapi.yaml, authenticated by
 * this client; the methods below are shortcuts for the common flows (and
 * `mfa` groups the second factor's), and throw LatchError, NetworkError,
 * SessionEndedError, NotLoggedInError or RefreshBackoffError.
 */
export class LatchClient {
  /** Every operation of openapi.yaml, typed; credentials are added here. */
  readonly api: Client<paths>;
  readonly baseUrl: string;
  /** The lock that serialises refreshes: 'web-locks', 'storage-lease', 'in-page' or 'storage' (the storage's own, as FileStorage's). */
  readonly lockKind: RefreshLock['kind'];

  private readonly storage: StorageLike;
  private readonly key: string;
  private readonly mode: 'session' | 'exchange';
  private readonly apiKey: string | undefined;
  private readonly exchangeReq: ExchangeRequest | undefined;
  private readonly policy: Required<RefreshPolicy>;
  private readonly retry: Required<RetryPolicy>;
  private readonly timeoutMs: number;
  private readonly refreshTimeoutMs: number;
  private readonly onHandlerError: (error: unknown, event: keyof LatchEvents) => void;
  // ready settles once the storage has been read at start and initialSession fired.
  private readonly ready: Promise<void>;
  private initial: LatchEvents['initialSession'] | null = null;
  // fatal is a permanent refusal of a renewal (isPermanent): thrown again
  // without a request until a new session opens.
  private fatal: LatchError | null = null;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly lock: RefreshLock;
  private readonly channel: TabChannel | undefined;
  private readonly handlers: { [K in keyof LatchEvents]: Set<(e: LatchEvents[K]) => void> } = {
    initialSession: new Set(),
    signedIn: new Set(),
    tokenRefreshed: new Set(),
    signedOut: new Set(),
  };

  private cur: Tokens | null = null;
  private extra = 0; // the jitter of cur's margin
  private end: SessionEnd | null = null;
  private fails = 0;
  private lastErr: unknown = undefined;
  private retryAt = 0;
  private inflight: Promise<Tokens> | null = null;
  private bgBusy = false;

  constructor(opts: LatchClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    const { storage, shared } = resolveStorage(opts.storage);
    this.storage = storage;
    this.key = opts.storageKey ?? `latch:${this.baseUrl}`;
    this.mode = opts.apiKey ? 'exchange' : 'session';
    this.apiKey = opts.apiKey;
    this.exchangeReq = opts.exchange;
    this.policy = {
      beforeMs: opts.refresh?.beforeMs ?? 60_000,
      fraction: opts.refresh?.fraction ?? 0.2,
      jitter: opts.refresh?.jitter ?? 0.1,
    };
    this.retry = {
      maxRetries: opts.retry?.maxRetries ?? 3,
      baseDelayMs: opts.retry?.baseDelayMs ?? 250,
      maxDelayMs: opts.retry?.maxDelayMs ?? 30_000,
    };
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.refreshTimeoutMs = opts.refreshTimeoutMs ?? 15_000;
    this.onHandlerError = opts.onHandlerError ?? ((err, event) => console.error(`latch: ${event}:`, err));
    const f = opts.fetch ?? globalThis.fetch;
    if (typeof f !== 'function') throw new Error('latch: no fetch in this runtime; pass options.fetch');
    this.fetchImpl = (input, init) => f(input, init);
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    // Tabs share localStorage; other storages are shared (if at all) within
    // one page, where Web Locks (when present) still serialise refreshes.
    const crossTab = (opts.crossTab ?? true) && this.mode === 'session';
    // A storage with a lock of its own (FileStorage: across processes) serialises refreshes itself.
    const locking = storage as Partial<LockingStorage>;
    if (this.mode === 'session' && typeof locking.lock === 'function') {
      const key = this.key;
      this.lock = { kind: 'storage', run: <T>(fn: () => Promise<T>) => (locking as LockingStorage).lock<T>(key, fn) };
    } else {
      this.lock = crossTab ? refreshLock(`latch-refresh:${this.key}`, shared, this.refreshTimeoutMs + 5_000) : refreshLock('', undefined, 0, false);
    }
    this.lockKind = this.lock.kind;
    if (crossTab && shared) {
      this.channel = new TabChannel(`latch:${this.key}`, this.key, shared, (m) => this.onTabMessage(m), decodeTokens);
    }
    this.api = createClient<paths>({ baseUrl: this.baseUrl, fetch: (req: Request) => this.send(req) });
    this.mfa = new MFA(this.api, (r) => this.unwrap(r), (t) => this.saveSession(t));
    this.ready = this.loadInitial();
  }

  /** MFA: verifying a pending second factor and managing the user's factors. */
  readonly mfa: MFA;

  /**
   * on registers a handler and returns a function that removes it. A
   * handler of `initialSession` added after the storage was read is called
   * with what was found, at once (in a microtask).
   */
  on<K extends keyof LatchEvents>(event: K, handler: (e: LatchEvents[K]) => void): () => void {
    this.handlers[event].add(handler);
    const initial = this.initial;
    if (event === 'initialSession' && initial) {
      queueMicrotask(() => {
        if (this.handlers[event].has(handler)) this.call(event, handler, { tokens: initial.tokens ? { ...initial.tokens } : null } as LatchEvents[K]);
      });
    }
    return () => this.handlers[event].delete(handler);
  }

  // loadInitial reads the session kept in the storage, once, at start, and
  // fires initialSession. A storage that cannot be read counts as empty (and
  // is reported); later calls read it again.
  private async loadInitial(): Promise<void> {
    let t: Tokens | null = null;
    if (this.mode === 'session') {
      try {
        t = decodeTokens(await this.storage.getItem(this.key));
      } catch (err) {
        this.onHandlerError(new Error('latch: cannot read the storage; no session restored', { cause: err }), 'initialSession');
      }
      if (t && !this.cur && !this.end) this.set(t);
    }
    this.initial = { tokens: t ? { ...t } : null };
    this.emit('initialSession', { tokens: t ? { ...t } : null });
  }

  /** close stops listening to other tabs. */
  close(): void {
    this.channel?.close();
  }

  // ---- flows -------------------------------------------------------------

  /**
   * signUp creates an account and opens its session (`status` is `session_created`); with
   * LATCH_REQUIRE_VERIFIED_EMAIL it opens none and answers `status: 'verification_required'`.
   * LatchError `email_taken`, `weak_password`.
   */
  async signUp(email: string, password: string): Promise<SignupResult> {
    const body = await this.unwrap(await this.api.POST('/auth/signup', { body: { email, password } }));
    if (body.status === 'session_created') await this.saveSession(body);
    return body;
  }

  /**
   * signIn opens a session with email and password (LatchError
   * `invalid_credentials` on a wrong one). The session is the client's
   * either way; when the user has a verified second factor it is aal1 and
   * `mfa` lists the factors that raise it (see client.mfa).
   */
  async signIn(email: string, password: string): Promise<SignInResult> {
    return this.signedIn(await this.unwrap(await this.api.POST('/auth/login', { body: { email, password } })));
  }

  /**
   * signInWithOtp asks Latch to mail a sign-in link and a 6-digit code, which
   * verifyOtp takes. It resolves the same whether or not an account has the
   * address (nothing is mailed to an unknown one unless `createUser`).
   * LatchError `invalid_request` for a `redirectTo` Latch does not allow,
   * `rate_limited` (per address and per IP).
   */
  async signInWithOtp(req: SignInWithOtpRequest): Promise<void> {
    const body: Schemas['OTPRequest'] = { email: req.email };
    if (req.createUser !== undefined) body.create_user = req.createUser;
    if (req.redirectTo !== undefined) body.redirect_to = req.redirectTo;
    await this.unwrap(await this.api.POST('/auth/otp', { body }));
  }

  /**
   * verifyOtp opens a session with the mailed code or the link's token,
   * exactly as signIn does: the session is the client's, and `mfa` lists the
   * factors that raise it when the user has one. LatchError `invalid_token`
   * for a wrong, used or expired code or link (five wrong codes end the
   * mail's challenge), `rate_limited`.
   */
  async verifyOtp(req: VerifyOtpRequest): Promise<SignInResult> {
    return this.signedIn(await this.unwrap(await this.api.POST('/auth/otp/verify', { body: req })));
  }

  /** signedIn makes a new session the client's and says what it waits for. */
  private async signedIn(tokens: TokenResponse): Promise<SignInResult> {
    await this.saveSession(tokens);
    const mfa = tokens.mfa && tokens.mfa.factors.length > 0 ? tokens.mfa : null;
    return { tokens, mfa };
  }

  /**
   * signInWithProvider starts a sign-in with an identity provider that
   * Latch is configured with (`GET /auth/providers` lists them). It makes a
   * PKCE verifier, keeps it in the client's storage (beside the session, so
   * it survives the round trip), and sends the browser to Latch's authorize
   * URL, which goes on to the provider and comes back to `redirectTo` (one
   * of Latch's LATCH_REDIRECT_URLS) with `?code=`; there, call
   * exchangeCodeForSession. With `navigate: false`, or outside a browser,
   * it only returns the URL.
   */
  async signInWithProvider(provider: string, opts: { redirectTo: string; navigate?: boolean }): Promise<string> {
    return this.startSignIn(`/auth/providers/${encodeURIComponent(provider)}/authorize`, {}, opts);
  }

  /**
   * signInWithSSO starts an enterprise SSO sign-in: Latch finds the
   * organization that verified the domain of `email` and sends the browser
   * to that organization's identity provider (docs/sso.md). The rest is as
   * signInWithProvider: the verifier is kept in storage, and the page at
   * `redirectTo` finishes with exchangeCodeForSession. Latch answers the
   * browser 404 `sso_not_configured` when no organization signs in that
   * domain.
   */
  async signInWithSSO(email: string, opts: { redirectTo: string; navigate?: boolean }): Promise<string> {
    return this.startSignIn('/auth/sso', { email }, opts);
  }

  /** startSignIn keeps a new PKCE verifier and sends the browser to path with params and its challenge. */
  private async startSignIn(path: string, params: Record<string, string>, opts: { redirectTo: string; navigate?: boolean }): Promise<string> {
    await this.ready;
    const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
    const challenge = b64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
    await this.storage.setItem(`${this.key}:pkce`, JSON.stringify({ verifier, redirectTo: opts.redirectTo }));
    const q = new URLSearchParams({ ...params, redirect_to: opts.redirectTo, code_challenge: challenge, code_challenge_method: 'S256' });
    const url = `${this.baseUrl}${path}?${q}`;
    const loc = (globalThis as { location?: { assign(u: string): void } }).location;
    if (opts.navigate !== false && loc) loc.assign(url);
    return url;
  }

  /**
   * exchangeCodeForSession finishes a provider sign-in on the page it came
   * back to: it exchanges the one-time `code` (default: `?code=` of the
   * current location) with the verifier signInWithProvider kept, once,
   * within 60 seconds, and the session becomes the client's (as signIn's:
   * `mfa` lists the factors an aal1 session waits for). Throws
   * ProviderSignInError when the URL carries Latch's `?error=` instead
   * (`identity_not_linked`, `access_denied`, ...), LatchError
   * `invalid_grant` for a used, expired or foreign code.
   */
  async exchangeCodeForSession(code?: string): Promise<SignInResult> {
    await this.ready;
    if (code === undefined) {
      const search = (globalThis as { location?: { search: string } }).location?.search ?? '';
      const q = new URLSearchParams(search);
      const err = q.get('error');
      if (err) throw new ProviderSignInError(err, q.get('error_description') ?? '');
      code = q.get('code') ?? '';
    }
    const kept = await this.storage.getItem(`${this.key}:pkce`);
    await this.storage.removeItem(`${this.key}:pkce`);
    const verifier = kept ? (JSON.parse(kept) as { verifier?: string }).verifier : undefined;
    if (!code || !verifier) throw new ProviderSignInError('invalid_request', 'no code, or no sign-in started by this client (signInWithProvider)');
    const res = await this.send(new Request(`${this.baseUrl}/auth/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier }),
    }));
    if (!res.ok) throw await errorFrom(res);
    const body = (await res.json()) as ExchangeResponse;
    if (!body.refresh_token || !body.session_id || !body.user || !body.aal) {
      throw new Error('latch: the code exchange answered no session');
    }
    const tokens: TokenResponse = {
      access_token: body.access_token, token_type: body.token_type, expires_in: body.expires_in, expires_at: body.expires_at,
      refresh_token: body.refresh_token, session_id: body.session_id, user: body.user, aal: body.aal, mfa: body.mfa,
    };
    await this.saveSession(tokens);
    const mfa = tokens.mfa && tokens.mfa.factors.length > 0 ? tokens.mfa : null;
    return { tokens, mfa };
  }

  /**
   * createAPIKey creates a personal API key (`latch_u_…`) with scopes this
   * session holds (plus application scopes); `key`, the secret, is in this
   * answer only. LatchError `insufficient_permissions` for a scope the user
   * lacks, `email_not_verified` before the email is verified.
   */
  async createAPIKey(req: CreateAPIKeyRequest): Promise<APIKeyWithSecret> {
    return this.unwrap(await this.api.POST('/api-keys', { body: req }));
  }

  /** me returns the user behind the credentials. */
  async me(): Promise<User> {
    return this.unwrap(await this.api.GET('/auth/me'));
  }

  /** sessions lists the user's sessions. */
  async sessions(): Promise<SessionList> {
    return this.unwrap(await this.api.GET('/sessions'));
  }

  /** revokeSession ends one session of the user. */
  async revokeSession(sessionId: string): Promise<void> {
    await this.unwrap(await this.api.DELETE('/sessions/{session_id}', { params: { path: { session_id: sessionId } } }));
  }

  /**
   * logout ends this session (`local`), every other one (`others`) or all
   * (`global`). For `local` and `global` the session ends here too, whatever
   * Latch answered: signedOut fires with reason `logout`, the storage is
   * cleared and other tabs are told.
   */
  async logout(scope: LogoutScope = 'local', opts: { revokeApiKeys?: boolean } = {}): Promise<void> {
    const query = opts.revokeApiKeys ? { scope, revoke_api_keys: true } : { scope };
    let failure: unknown;
    try {
      await this.unwrap(await this.api.POST('/auth/logout', { params: { query } }));
    } catch (err) {
      failure = err;
    }
    if (scope !== 'others') {
      const t = this.cur ?? decodeTokens(await this.storage.getItem(this.key));
      if (t) {
        this.endSession('logout', undefined, t);
        await this.storage.removeItem(this.key);
        this.channel?.post({ type: 'ended', access: t.accessToken, refresh: t.refreshToken, sessionId: t.sessionId });
      }
      if (failure instanceof SessionEndedError || failure instanceof NotLoggedInError) return;
      if (failure instanceof LatchError && failure.status === 401) return;
    }
    if (failure !== undefined) throw failure;
  }

  /** refresh rotates the refresh token now (under the cross-tab lock) and returns the new tokens. */
  async refresh(): Promise<Tokens> {
    const { t } = await this.current();
    if (!t && this.mode === 'session') throw this.end ? this.endedError() : new NotLoggedInError();
    return this.renew(t?.accessToken ?? '');
  }

  /** accessToken returns a valid access token, renewed when due (for resource servers of yours). */
  async accessToken(): Promise<string> {
    return (await this.token()).accessToken;
  }

  /** tokens returns a copy of the tokens held, or null. */
  async tokens(): Promise<Tokens | null> {
    const { t } = await this.current();
    return t ? { ...t } : null;
  }

  /** setTokens opens a session with tokens obtained elsewhere. */
  async setTokens(t: Tokens): Promise<void> {
    await this.ready;
    await this.lock.run(async () => {
      await this.storage.setItem(this.key, encodeTokens(t));
      this.resetEnd();
      this.set(t);
    });
    this.channel?.post({ type: 'tokens', tokens: t, signedIn: true });
  }

  /** unwrap returns the data of an openapi-fetch result, or throws its LatchError. */
  async unwrap<T>(r: { data?: T; error?: unknown; response: Response }): Promise<T> {
    if (r.response.ok) return r.data as T;
    const body = r.error && typeof r.error === 'object' && 'error' in r.error ? (r.error as ErrorBody) : undefined;
    throw new LatchError(r.response.status, body, r.response.headers.get('X-Request-Id') ?? '', parseRetryAfter(r.response.headers.get('Retry-After')));
  }

  // ---- events --------------------------------------------------------------

  private emit<K extends keyof LatchEvents>(event: K, e: LatchEvents[K]): void {
    for (const h of [...this.handlers[event]]) this.call(event, h, e);
  }

  // call runs one handler. Its failure is reported (onHandlerError) and
  // does not break the client, nor keep the other handlers from running.
  private call<K extends keyof LatchEvents>(event: K, h: (e: LatchEvents[K]) => void, e: LatchEvents[K]): void {
    try {
      h(e);
    } catch (err) {
      try {
        this.onHandlerError(err, event);
      } catch {
        // The reporter failed too: nothing more to tell.
      }
    }
  }

  // ---- tokens --------------------------------------------------------------

  private set(t: Tokens | null): void {
    this.cur = t ? { ...t } : null;
    this.extra = t && this.policy.jitter > 0 ? this.random() * this.policy.jitter * this.margin(t) : 0;
  }

  private resetEnd(): void {
    this.end = null;
    this.fatal = null;
    this.fails = 0;
    this.lastErr = undefined;
    this.retryAt = 0;
  }

  private margin(t: Tokens): number {
    let m = this.policy.beforeMs;
    const life = t.expiresAt - t.issuedAt;
    if (t.issuedAt > 0 && life > 0) m = Math.min(m, life * this.policy.fraction);
    return m;
  }

  private due(t: Tokens, extra: number): boolean {
    return this.now() >= t.expiresAt - this.margin(t) - extra;
  }

  private expired(t: Tokens): boolean {
    return this.now() >= t.expiresAt;
  }

  private owns(end: SessionEnd | null, t: Tokens): boolean {
    if (!end) return false;
    return (!!end.access && t.accessToken === end.access) || (!!end.refresh && t.refreshToken === end.refresh);
  }

  // saveSession makes a session that Latch opened (or raised) the client's.
  // When the storage cannot keep it, the session is not lost with it: the
  // client holds it in memory (this process only; `tokens()` returns it)
  // and the call throws the storage's error.
  private async saveSession(r: TokenResponse): Promise<void> {
    await this.ready;
    const t = this.fromTokenResponse(r);
    let unsaved: { err: unknown } | null = null;
    const hold = () => {
      this.resetEnd();
      this.set(t);
    };
    try {
      await this.lock.run(async () => {
        try {
          await this.storage.setItem(this.key, encodeTokens(t));
        } catch (err) {
          unsaved = { err };
        }
        hold();
      });
    } catch (err) {
      unsaved = { err }; // the lock itself failed
      hold();
    }
    this.channel?.post({ type: 'tokens', tokens: t, signedIn: true });
    this.emit('signedIn', { tokens: { ...t }, user: r.user, elsewhere: false });
    if (unsaved) throw (unsaved as { err: unknown }).err;
  }

  private fromTokenResponse(r: TokenResponse): Tokens {
    const now = this.now();
    return {
      accessToken: r.access_token,
      refreshToken: r.refresh_token,
      issuedAt: now,
      expiresAt: r.expires_in > 0 ? now + r.expires_in * 1000 : Date.parse(r.expires_at),
      sessionId: r.session_id,
      userId: r.user?.id,
    };
  }

  // current returns the tokens held; with none in session mode it loads the
  // storage, where another tab or process may have opened a session.
  private async current(): Promise<{ t: Tokens | null; extra: number }> {
    await this.ready;
    if (!this.cur && this.mode === 'session') {
      const t = decodeTokens(await this.storage.getItem(this.key));
      if (!this.cur && t && !this.owns(this.end, t)) {
        this.resetEnd();
        this.set(t);
      }
    }
    return { t: this.cur ? { ...this.cur } : null, extra: this.extra };
  }

  private endedError(): SessionEndedError {
    const e = this.end!;
    return new SessionEndedError(e.reason, e.cause);
  }

  // token returns the access token to send. A due but valid token is
  // returned at once while a renewal runs in the background; an expired one
  // is renewed first, unless renewals are blocked.
  private async token(): Promise<Tokens> {
    const { t, extra } = await this.current();
    if (!t) {
      if (this.mode === 'exchange') return this.renew('');
      if (this.end) throw this.endedError();
      throw new NotLoggedInError();
    }
    if (!this.due(t, extra)) return t;
    if (!this.expired(t)) {
      if (this.mode === 'exchange' || t.refreshToken) this.renewInBackground(t.accessToken);
      return t;
    }
    return this.renew(t.accessToken);
  }

  // blocked returns the error of a renewal that must not be tried now.
  private blocked(): Error | null {
    if (this.end) return this.endedError();
    if (this.fatal) return this.fatal;
    const now = this.now();
    if (now < this.retryAt) return new RefreshBackoffError(this.retryAt, this.retryAt - now, this.lastErr);
    return null;
  }

  private renew(stale: string): Promise<Tokens> {
    const b = this.blocked();
    if (b) return Promise.reject(b);
    return this.shared(stale);
  }

  private shared(stale: string): Promise<Tokens> {
    if (!this.inflight) {
      this.inflight = this.renewShared(stale).finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  private renewInBackground(stale: string): void {
    if (this.blocked() || this.bgBusy) return;
    this.bgBusy = true;
    this.shared(stale)
      .catch(() => undefined) // remembered: the backoff, or the end of the session
      .finally(() => {
        this.bgBusy = false;
      });
  }

  private async renewShared(stale: string): Promise<Tokens> {
    const b = this.blocked();
    if (b) throw b;
    try {
      const t = this.mode === 'exchange' ? await this.exchange(stale) : await this.lock.run(() => this.refreshLocked(stale));
      this.fails = 0;
      this.lastErr = undefined;
      this.retryAt = 0;
      return t;
    } catch (err) {
      if (err instanceof SessionEndedError) throw err;
      if (isPermanent(err)) {
        this.fatal = err;
        throw err;
      }
      throw this.backOff(err);
    }
  }

  /** backoff returns the wait after failure number n in a row (see RetryPolicy). */
  private backoff(n: number, retryAfterMs: number): number {
    let b = this.retry.baseDelayMs * 2 ** Math.min(n, 20);
    if (!(b > 0) || b > this.retry.maxDelayMs) b = this.retry.maxDelayMs;
    let d = b / 2 + this.random() * (b / 2);
    if (retryAfterMs > 0) d = Math.max(d, retryAfterMs + this.random() * Math.min(retryAfterMs / 10, 1000));
    return Math.round(d);
  }

  private backOff(err: unknown): RefreshBackoffError {
    const ra = err instanceof LatchError ? err.retryAfterMs : 0;
    const d = this.backoff(this.fails, ra);
    this.fails++;
    this.lastErr = err;
    this.retryAt = this.now() + d;
    return new RefreshBackoffError(this.retryAt, d, err);
  }

  // endSession ends the session once (the first reason stays), forgets its
  // tokens and fires signedOut once.
  private endSession(reason: SessionEndReason, cause: unknown, t: Tokens | null): SessionEndedError {
    if (!this.end) {
      this.end = { reason, cause, access: t?.accessToken, refresh: t?.refreshToken, sessionId: t?.sessionId, notified: false };
    }
    this.set(null);
    const end = this.end;
    if (!end.notified) {
      end.notified = true;
      this.emit('signedOut', { reason: end.reason, error: end.cause });
    }
    return this.endedError();
  }

  // refreshLocked runs under the cross-tab lock. It re-reads the storage
  // first: tokens there that are not the stale ones and not due were
  // rotated by another tab or process, and are adopted instead.
  private async refreshLocked(stale: string): Promise<Tokens> {
    const latest = decodeTokens(await this.storage.getItem(this.key));
    if (!latest || this.owns(this.end, latest)) {
      throw this.endSession('revoked_elsewhere', undefined, this.cur);
    }
    const extra = this.cur && this.cur.accessToken === latest.accessToken ? this.extra : 0;
    if (latest.accessToken !== stale && !this.due(latest, extra)) {
      this.adopt(latest);
      return latest;
    }
    if (!latest.refreshToken) {
      if (!this.expired(latest)) {
        this.adopt(latest);
        return latest;
      }
      const ended = this.endSession('expired', undefined, latest);
      await this.storage.removeItem(this.key);
      throw ended;
    }
    const res = await this.postRefresh(latest.refreshToken);
    if (!res.ok) {
      const e = await errorFrom(res);
      if (e.code !== 'invalid_grant') throw e;
      const ended = this.endSession('invalid_grant', e, latest);
      await this.storage.removeItem(this.key);
      this.channel?.post({ type: 'ended', access: latest.accessToken, refresh: latest.refreshToken, sessionId: latest.sessionId });
      throw ended;
    }
    const t = this.fromTokenResponse((await res.json()) as TokenResponse);
    this.set(t);
    await this.storage.setItem(this.key, encodeTokens(t));
    this.channel?.post({ type: 'tokens', tokens: t, signedIn: false });
    this.emit('tokenRefreshed', { tokens: { ...t }, adopted: false });
    return t;
  }

  // postRefresh sends the refresh. A network failure is replayed once at
  // once: the server may have rotated already, and within its reuse grace it
  // answers the same successor again. Other failures are not retried here.
  private async postRefresh(refreshToken: string): Promise<Response> {
    const send = () =>
      this.fetchOnce(
        new Request(`${this.baseUrl}/auth/refresh`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ refresh_token: refreshToken }),
        }),
        this.refreshTimeoutMs,
      );
    try {
      return await send();
    } catch (err) {
      if (!(err instanceof NetworkError)) throw err;
      return send();
    }
  }

  private adopt(t: Tokens): void {
    if (this.cur?.accessToken === t.accessToken) return;
    this.set(t);
    this.emit('tokenRefreshed', { tokens: { ...t }, adopted: true });
  }

  // exchange trades the API key for a new access token unless the current
  // one is not the stale one and still fresh. A failure leaves the current
  // token in place until it expires.
  private async exchange(stale: string): Promise<Tokens> {
    if (this.cur && this.cur.accessToken !== stale && !this.due(this.cur, this.extra)) return { ...this.cur };
    const res = await this.fetchOnce(
      new Request(`${this.baseUrl}/auth/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-API-Key': this.apiKey! },
        body: JSON.stringify(this.exchangeReq ?? {}),
      }),
      this.refreshTimeoutMs,
    );
    if (!res.ok) throw await errorFrom(res);
    const r = (await res.json()) as ExchangeResponse;
    const now = this.now();
    const t: Tokens = {
      accessToken: r.access_token,
      issuedAt: now,
      expiresAt: r.expires_in > 0 ? now + r.expires_in * 1000 : Date.parse(r.expires_at),
      scope: r.scope,
    };
    this.set(t);
    this.emit('tokenRefreshed', { tokens: { ...t }, adopted: false });
    return t;
  }

  // onTabMessage applies what another tab did: a login there opens the
  // session here; a rotation is adopted unless older than what we hold; the
  // end of the session we hold (or an emptied storage) ends it here too.
  private onTabMessage(m: TabMessage): void {
    if (!this.initial) {
      void this.ready.then(() => this.onTabMessage(m));
      return;
    }
    if (m.type === 'tokens') {
      const t = m.tokens;
      if (this.owns(this.end, t) || this.cur?.accessToken === t.accessToken) return;
      if (m.signedIn) {
        this.resetEnd();
        this.set(t);
        this.emit('signedIn', { tokens: { ...t }, elsewhere: true });
        return;
      }
      if (this.end) return; // a rotation of a session that ended here
      if (this.cur && t.issuedAt < this.cur.issuedAt) return;
      this.set(t);
      this.emit('tokenRefreshed', { tokens: { ...t }, adopted: true });
      return;
    }
    const cur = this.cur;
    if (!cur) return;
    const named = m.access !== undefined || m.refresh !== undefined || m.sessionId !== undefined;
    const ours =
      !named ||
      (m.sessionId !== undefined && m.sessionId === cur.sessionId) ||
      (m.access !== undefined && m.access === cur.accessToken) ||
      (m.refresh !== undefined && m.refresh === cur.refreshToken);
    if (ours) this.endSession('revoked_elsewhere', undefined, cur);
  }

  // ---- transport -------------------------------------------------------------

  private relPath(url: string): string | undefined {
    if (!url.startsWith(this.baseUrl + '/')) return undefined;
    const p = url.slice(this.baseUrl.length);
    const q = p.search(/[?#]/);
    return q < 0 ? p : p.slice(0, q);
  }

  // send is openapi-fetch's fetch: it adds the bearer token to requests for
  // Latch's operations that take one, never to other hosts, and on a 401
  // token_expired or invalid_token renews once and sends the request once
  // more. A call that has no token to send fails here, without a request.
  private async send(req: Request): Promise<Response> {
    const p = this.relPath(req.url);
    const auth = p === undefined ? undefined : authOf(req.method, p);
    if (!auth || auth === 'none' || auth === 'apikey' || req.headers.has('Authorization') || req.headers.has('X-API-Key')) {
      return this.retrying(req);
    }
    const tok = await this.token();
    const replay = req.clone();
    const res = await this.retrying(withBearer(req, tok.accessToken));
    if (res.status !== 401) return res;
    const code = await peekCode(res);
    if (code !== 'token_expired' && code !== 'invalid_token') return res;
    const nt = await this.renew(tok.accessToken);
    await res.body?.cancel();
    return this.retrying(withBearer(replay, nt.accessToken));
  }

  private retryable(req: Request, res: Response): boolean {
    if (res.status === 429) return true;
    if (res.status === 503) return IDEMPOTENT.has(req.method) || req.headers.has('Idempotency-Key');
    return false;
  }

  // retrying sends req, retrying 429 and 503 as RetryPolicy says. Network
  // errors are not retried: a request may have reached the server.
  private async retrying(req: Request): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      const copy = attempt < this.retry.maxRetries ? req.clone() : null;
      const res = await this.fetchOnce(req, this.timeoutMs);
      if (!copy || !this.retryable(req, res)) return res;
      const ra = parseRetryAfter(res.headers.get('Retry-After'));
      if (ra > this.retry.maxDelayMs) return res;
      const d = Math.min(this.backoff(attempt, ra), this.retry.maxDelayMs);
      await res.body?.cancel();
      await sleep(d, req.signal);
      req = copy;
    }
  }

  // fetchOnce sends one request and reads its whole answer within
  // timeoutMs (and the request's own signal). A failure to reach Latch, or
  // no complete answer in time, is a NetworkError; an abort by the caller's
  // signal throws the caller's reason.
  private async fetchOnce(req: Request, timeoutMs: number): Promise<Response> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = anySignal(req.signal, timeout);
    try {
      const res = await this.fetchImpl(new Request(req, { signal }));
      const empty = req.method === 'HEAD' || res.status === 204 || res.status === 205 || res.status === 304;
      const body = empty ? null : await res.arrayBuffer();
      return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
    } catch (err) {
      if (req.signal.aborted) throw req.signal.reason ?? err;
      if (timeout.aborted) throw new NetworkError(`no answer from ${this.baseUrl} within ${timeoutMs} ms`, err, true);
      throw new NetworkError(`cannot reach ${this.baseUrl}`, err);
    }
  }
}

// anySignal aborts when either signal does (AbortSignal.any where the runtime has it).
function anySignal(a: AbortSignal, b: AbortSignal): AbortSignal {
  const any = (AbortSignal as { any?: (signals: AbortSignal[]) => AbortSignal }).any;
  if (typeof any === 'function') return any.call(AbortSignal, [a, b]);
  const c = new AbortController();
  for (const s of [a, b]) {
    if (s.aborted) {
      c.abort(s.reason);
      break;
    }
    s.addEventListener('abort', () => c.abort(s.reason), { once: true });
  }
  return c.signal;
}

function withBearer(req: Request, token: string): Request {
  const h = new Headers(req.headers);
  h.set('Authorization', `Bearer ${token}`);
  return new Request(req, { headers: h });
}

async function peekCode(res: Response): Promise<string> {
  try {
    const b = (await res.clone().json()) as { error?: unknown };
    if (typeof b.error === 'string') return b.error;
  } catch {
    // no JSON body
  }
  return /error="invalid_token"/.test(res.headers.get('WWW-Authenticate') ?? '') ? 'invalid_token' : '';
}

type Unwrap = <T>(r: { data?: T; error?: unknown; response: Response }) => Promise<T>;

/**
 * MFA is a client's second factors (`client.mfa`): verifying the one that
 * signIn left pending, and managing the user's factors. A verification or a
 * confirmed enrolment raises the session to aal2; its new tokens replace the
 * held ones exactly as a sign-in's do (storage, other tabs, `signedIn`).
 */
export class MFA {
  /** @internal */
  constructor(
    private readonly api: Client<paths>,
    private readonly unwrap: Unwrap,
    private readonly save: (r: TokenResponse) => Promise<void>,
  ) {}

  /**
   * verifyTOTP raises this session to aal2 with a TOTP code. LatchError
   * `mfa_verification_failed` for a wrong or used code, `rate_limited` after
   * too many.
   */
  async verifyTOTP(code: string): Promise<TokenResponse> {
    return this.verify({ method: 'totp', code });
  }

  /** verifyRecoveryCode raises this session to aal2 with a recovery code, which is spent. Errors as verifyTOTP. */
  async verifyRecoveryCode(code: string): Promise<TokenResponse> {
    return this.verify({ method: 'recovery_code', code });
  }

  /**
   * beginWebAuthn returns the options (`{ publicKey: ... }`, JSON form) for
   * navigator.credentials.get() that a WebAuthn second factor answers; then
   * verifyWebAuthn. LatchError `not_found` when the user has no WebAuthn factor.
   */
  async beginWebAuthn(): Promise<Record<string, unknown>> {
    return (await this.unwrap(await this.api.POST('/auth/mfa/webauthn/challenge'))).options;
  }

  /** verifyWebAuthn raises this session to aal2 with an assertion (the PublicKeyCredential's `toJSON()`). Errors as verifyTOTP. */
  async verifyWebAuthn(assertion: WebAuthnCredential): Promise<TokenResponse> {
    return this.verify({ method: 'webauthn', credential: assertion });
  }

  /** factors lists the user's second factors (verified or not), the recovery codes left and this session's aal. */
  async factors(): Promise<MFAFactorList> {
    return this.unwrap(await this.api.GET('/auth/mfa/factors'));
  }

  /**
   * enrollTOTP starts a TOTP enrolment: show the QR code (or the secret),
   * then confirmTOTP with a code from the app, from this same session and
   * promptly (Latch refuses an old enrolment). LatchError `mfa_required`
   * when the user has a factor and the session is aal1.
   */
  async enrollTOTP(name?: string): Promise<TOTPEnrollment> {
    return this.unwrap(await this.api.POST('/auth/mfa/totp', { body: name ? { name } : {} }));
  }

  /**
   * confirmTOTP completes a TOTP enrolment; the session's new (aal2) tokens
   * replace the held ones. With the account's first factor the result carries
   * the recovery codes: show them once.
   */
  async confirmTOTP(factorId: string, code: string): Promise<MFAEnrollment> {
    const body = await this.unwrap(await this.api.POST('/auth/mfa/totp/{factor_id}/confirm', { params: { path: { factor_id: factorId } }, body: { code } }));
    await this.save(body.tokens);
    return body;
  }

  /** removeFactor removes a factor; Latch signs out the user's other sessions. LatchError `mfa_required` at aal1. */
  async removeFactor(factorId: string): Promise<void> {
    await this.unwrap(await this.api.DELETE('/auth/mfa/factors/{factor_id}', { params: { path: { factor_id: factorId } } }));
  }

  /** regenerateRecoveryCodes replaces the recovery codes and returns the new ones. LatchError `mfa_required` at aal1. */
  async regenerateRecoveryCodes(): Promise<string[]> {
    return (await this.unwrap(await this.api.POST('/auth/mfa/recovery-codes'))).codes;
  }

  // verify posts a second factor; the upgraded session's new tokens become the client's.
  private async verify(body: Schemas['MFAVerifyRequest']): Promise<TokenResponse> {
    const r = await this.unwrap(await this.api.POST('/auth/mfa/verify', { body }));
    await this.save(r);
    return r;
  }
}

/** createLatchClient returns a LatchClient. */
export function createLatchClient(opts: LatchClientOptions): LatchClient {
  return new LatchClient(opts);
}

function b64url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

import type { components } from './schema.gen.js';

/** ErrorCode is a stable snake_case error code of openapi.yaml (add-only). */
export type ErrorCode = components['schemas']['ErrorCode'];
/** ErrorBody is the one Error body of every non-2xx answer. */
export type ErrorBody = components['schemas']['Error'];

/**
 * LatchError is an error answer of Latch: its status and the fields of the
 * Error body. A body that is not the Error schema still gives a LatchError,
 * with the code that the status implies.
 */
export class LatchError extends Error {
  override readonly name = 'LatchError';
  /** HTTP status of the answer. */
  readonly status: number;
  /** The stable error code, such as `invalid_credentials`. */
  readonly code: ErrorCode;
  /** Matches the X-Request-Id header and the server's logs. */
  readonly requestId: string;
  /** When the presented token expired (`token_expired` only). */
  readonly expiresAt?: Date;
  /** The wait the server asked for with Retry-After (429, 503), in ms; 0 if none. */
  readonly retryAfterMs: number;
  /** The Error body as it came (undefined when there was none). */
  readonly body?: ErrorBody;

  constructor(status: number, body: ErrorBody | undefined, requestId: string, retryAfterMs: number) {
    const code = body?.error ?? codeForStatus(status);
    const message = body?.message || `HTTP ${status}`;
    super(`latch: ${status} ${code}: ${message}${requestId ? ` (request id ${requestId})` : ''}`);
    this.status = status;
    this.code = code;
    this.requestId = body?.request_id || requestId;
    if (body?.expires_at) this.expiresAt = new Date(body.expires_at);
    this.retryAfterMs = retryAfterMs;
    this.body = body;
  }

  /** The human-readable message of the body. */
  get detail(): string {
    return this.body?.message ?? '';
  }
}

/** Why a session ended: this client logged out, Latch refused to refresh it, or another tab or process sharing the storage ended it. */
export type SessionEndReason = 'logout' | 'invalid_grant' | 'revoked_elsewhere' | 'expired';

/**
 * SessionEndedError is thrown, without a request, by every call that needs
 * the session once it has ended, until login or signup opens a new one.
 * `cause` is Latch's refusal (a LatchError with `invalid_grant`), if any.
 */
/**
 * ProviderSignInError is a provider sign-in that Latch ended with an
 * OAuth-style `?error=` on the way back: `identity_not_linked` (an account
 * has the email, but one side did not verify it: sign in and link),
 * `access_denied`, `invalid_request`, `conflict`, `email_not_verified`,
 * `temporarily_unavailable` or `server_error`.
 */
export class ProviderSignInError extends Error {
  override readonly name = 'ProviderSignInError';
  constructor(
    readonly code: string,
    readonly description: string,
  ) {
    super(`latch: provider sign-in failed: ${code}${description ? `: ${description}` : ''}`);
  }
}

export class SessionEndedError extends Error {
  override readonly name = 'SessionEndedError';
  readonly reason: SessionEndReason;
  constructor(reason: SessionEndReason, cause?: unknown) {
    super(`latch: the session has ended (${reason}); log in again`, cause === undefined ? undefined : { cause });
    this.reason = reason;
  }
}

/** NotLoggedInError is thrown, without a request, by calls that need a session when there is none. */
export class NotLoggedInError extends Error {
  override readonly name = 'NotLoggedInError';
  constructor() {
    super('latch: not logged in');
  }
}

/**
 * RefreshBackoffError is thrown instead of a refresh (or exchange) when an
 * earlier one failed and its backoff has not passed, to a call whose access
 * token has expired. Calls whose token is still valid are not affected.
 * `cause` is the failure that started the backoff.
 */
export class RefreshBackoffError extends Error {
  override readonly name = 'RefreshBackoffError';
  /** When the next renewal may be tried (ms since the epoch, on the client's clock). */
  readonly retryAt: number;
  /** retryAt less the time the error was made, in ms. */
  readonly retryAfterMs: number;
  constructor(retryAt: number, retryAfterMs: number, cause: unknown) {
    super(`latch: token renewal backing off for ${retryAfterMs} ms after: ${describe(cause)}`, { cause });
    this.retryAt = retryAt;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * NetworkError is thrown when Latch could not be reached or did not answer in
 * time: a failed fetch (DNS, refused or reset connection, TLS) or a request
 * that ran past `timeoutMs` (`timedOut`). `cause` is the underlying error.
 * A request aborted through the caller's own signal throws the caller's
 * abort reason instead, as fetch does.
 */
export class NetworkError extends Error {
  override readonly name = 'NetworkError';
  /** True when the request ran past its timeout. */
  readonly timedOut: boolean;
  constructor(message: string, cause: unknown, timedOut = false) {
    super(`latch: ${message}: ${describe(cause)}`, { cause });
    this.timedOut = timedOut;
  }
}

/**
 * isPermanent says whether an answer to a refresh or an exchange will not
 * change by trying again: a 4xx other than 408 and 429 (a revoked key, a
 * scope the key lacks, a malformed request). Such failures are thrown as the
 * LatchError they are, never backed off and retried.
 */
export function isPermanent(err: unknown): err is LatchError {
  return err instanceof LatchError && err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400: return 'invalid_request';
    case 401: return 'unauthorized';
    case 403: return 'insufficient_permissions';
    case 404: return 'not_found';
    case 405: return 'method_not_allowed';
    case 409: return 'conflict';
    case 413: return 'payload_too_large';
    case 415: return 'unsupported_media_type';
    case 429: return 'rate_limited';
    case 502: case 503: case 504: return 'unavailable';
  }
  return 'internal';
}

/** parseRetryAfter reads delay-seconds or an HTTP date; it returns ms, or 0. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number {
  if (!value) return 0;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(Number(v), 86400) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? 0 : Math.max(0, at - now);
}

/** errorFrom reads the LatchError of a non-2xx response (it consumes the body). */
export async function errorFrom(res: Response): Promise<LatchError> {
  let body: ErrorBody | undefined;
  try {
    const parsed: unknown = JSON.parse(await res.text());
    if (parsed && typeof parsed === 'object' && typeof (parsed as { error?: unknown }).error === 'string') {
      body = parsed as ErrorBody;
    }
  } catch {
    // Not the Error schema: the status says what it was.
  }
  return new LatchError(res.status, body, res.headers.get('X-Request-Id') ?? '', parseRetryAfter(res.headers.get('Retry-After')));
}

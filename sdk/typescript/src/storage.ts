/**
 * Tokens are what the client keeps of a session (or of an exchanged token).
 * Times are ms since the epoch on the client's clock.
 */
export interface Tokens {
  accessToken: string;
  /** Absent for tokens exchanged from an API key. */
  refreshToken?: string;
  issuedAt: number;
  expiresAt: number;
  sessionId?: string;
  userId?: string;
  /** Space-separated scopes (exchanged tokens). */
  scope?: string;
}

/**
 * StorageLike is where tokens are kept: the Web Storage API
 * (localStorage, sessionStorage) has this shape, and so does React Native's
 * AsyncStorage. Any method may return a promise, so a cookie jar or an
 * encrypted store fits too.
 */
export interface StorageLike {
  getItem(key: string): string | null | Promise<string | null>;
  setItem(key: string, value: string): void | Promise<void>;
  removeItem(key: string): void | Promise<void>;
}

/**
 * LockingStorage is a StorageLike shared by several processes (FileStorage
 * of `@latchauth/client/node`): it also locks across them. The client
 * refreshes inside lock(key, fn), after reading the storage again, so a
 * refresh token is never spent twice and another process's rotation is
 * adopted instead.
 */
export interface LockingStorage extends StorageLike {
  lock<T>(key: string, fn: () => Promise<T>): Promise<T>;
}

/** StorageOption names a built-in storage or gives one. */
export type StorageOption = 'memory' | 'localStorage' | 'sessionStorage' | StorageLike;

/** memoryStorage returns a StorageLike that keeps values in this process only: the default outside browsers. */
export function memoryStorage(): StorageLike {
  const m = new Map<string, string>();
  return {
    getItem: (k) => m.get(k) ?? null,
    setItem: (k, v) => void m.set(k, v),
    removeItem: (k) => void m.delete(k),
  };
}

/** webStorage returns globalThis[name] when the runtime has it and it works (Safari's private mode throws on setItem). */
export function webStorage(name: 'localStorage' | 'sessionStorage'): Storage | undefined {
  try {
    const s = (globalThis as Record<string, unknown>)[name] as Storage | undefined;
    if (!s) return undefined;
    const probe = '__latch_probe__';
    s.setItem(probe, '1');
    s.removeItem(probe);
    return s;
  } catch {
    return undefined;
  }
}

/**
 * resolveStorage turns a StorageOption into a StorageLike. The default is
 * localStorage in a browser and memory elsewhere. It also reports whether the
 * storage is localStorage itself, which tabs of one origin share.
 */
export function resolveStorage(opt: StorageOption | undefined): { storage: StorageLike; shared: Storage | undefined } {
  if (opt === undefined) {
    const isBrowser = typeof (globalThis as { document?: unknown }).document !== 'undefined';
    opt = isBrowser && webStorage('localStorage') ? 'localStorage' : 'memory';
  }
  if (opt === 'memory') return { storage: memoryStorage(), shared: undefined };
  if (opt === 'localStorage' || opt === 'sessionStorage') {
    const s = webStorage(opt);
    if (!s) throw new Error(`latch: ${opt} is not available in this runtime`);
    return { storage: s, shared: opt === 'localStorage' ? s : undefined };
  }
  const local = webStorage('localStorage');
  return { storage: opt, shared: local !== undefined && opt === local ? local : undefined };
}

/** encodeTokens and decodeTokens are the stored form of Tokens (JSON). */
export function encodeTokens(t: Tokens): string {
  return JSON.stringify(t);
}

export function decodeTokens(raw: string | null): Tokens | null {
  if (!raw) return null;
  try {
    const t = JSON.parse(raw) as Partial<Tokens>;
    if (typeof t.accessToken !== 'string' || typeof t.expiresAt !== 'number') return null;
    return { issuedAt: 0, ...t } as Tokens;
  } catch {
    return null;
  }
}

// Coordination of refreshes across the tabs of one origin (or across the
// clients of one runtime that share a storage key).
//
// With the Web Locks API (navigator.locks) one refresh runs at a time under
// an exclusive lock named after the storage key; without it, a lease written
// to localStorage (owner and expiry, checked again after a short pause, since
// localStorage has no compare-and-swap) stands in for the lock. Whoever holds
// it re-reads the storage first and adopts tokens that another tab already
// rotated. The winner publishes the new tokens through the storage and a
// BroadcastChannel; tabs without BroadcastChannel learn of them from
// `storage` events.

import type { Tokens } from './storage.js';

/** A message between tabs sharing one storage key. */
export type TabMessage =
  | { type: 'tokens'; tokens: Tokens; signedIn: boolean }
  | { type: 'ended'; access?: string; refresh?: string; sessionId?: string };

/**
 * RefreshLock runs fn while no other tab (or client) of the same key runs
 * one. Its kind: Web Locks, the localStorage lease, a lock within this page
 * only, or the storage's own lock (FileStorage: across processes).
 */
export interface RefreshLock {
  readonly kind: 'web-locks' | 'storage-lease' | 'in-page' | 'storage';
  run<T>(fn: () => Promise<T>): Promise<T>;
}

interface LockManagerLike {
  request<T>(name: string, options: { mode: 'exclusive' }, cb: () => Promise<T>): Promise<T>;
}

function lockManager(): LockManagerLike | undefined {
  const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
  return nav?.locks && typeof nav.locks.request === 'function' ? nav.locks : undefined;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * refreshLock picks the lock for a storage key: Web Locks where present,
 * else a lease in the shared localStorage when there is one, else a lock
 * within this page only (each client already runs one refresh at a time).
 */
export function refreshLock(name: string, shared: Storage | undefined, leaseMs: number, crossTab = true): RefreshLock {
  const locks = crossTab ? lockManager() : undefined;
  if (locks) {
    return { kind: 'web-locks', run: (fn) => locks.request(name, { mode: 'exclusive' }, fn) };
  }
  if (shared) return leaseLock(shared, `${name}:lease`, leaseMs);
  let tail: Promise<unknown> = Promise.resolve();
  return {
    kind: 'in-page',
    run<T>(fn: () => Promise<T>): Promise<T> {
      const next = tail.then(fn, fn);
      tail = next.catch(() => undefined);
      return next;
    },
  };
}

interface Lease {
  owner: string;
  until: number;
}

function readLease(s: Storage, key: string): Lease | null {
  try {
    const v = JSON.parse(s.getItem(key) ?? 'null') as Lease | null;
    return v && typeof v.owner === 'string' && typeof v.until === 'number' ? v : null;
  } catch {
    return null;
  }
}

function randomId(): string {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  return c?.randomUUID ? c.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

// leaseLock: take the lease when it is free or expired, wait, and keep it
// only if it still names us (the last writer wins when two tabs write at
// once). A holder that dies leaves a lease that expires after leaseMs.
function leaseLock(s: Storage, key: string, leaseMs: number): RefreshLock {
  let tail: Promise<unknown> = Promise.resolve();
  const acquire = async (id: string) => {
    for (;;) {
      const cur = readLease(s, key);
      const now = Date.now();
      if (!cur || cur.until <= now) {
        s.setItem(key, JSON.stringify({ owner: id, until: now + leaseMs }));
        await sleep(40 + Math.random() * 40);
        if (readLease(s, key)?.owner === id) return;
        continue;
      }
      await sleep(Math.min(100, Math.max(10, cur.until - now)));
    }
  };
  const runExclusive = async <T>(fn: () => Promise<T>): Promise<T> => {
    const id = randomId();
    await acquire(id);
    try {
      return await fn();
    } finally {
      if (readLease(s, key)?.owner === id) s.removeItem(key);
    }
  };
  return {
    kind: 'storage-lease',
    run<T>(fn: () => Promise<T>): Promise<T> {
      const next = tail.then(() => runExclusive(fn), () => runExclusive(fn));
      tail = next.catch(() => undefined);
      return next;
    },
  };
}

/** TabChannel carries TabMessages between tabs: BroadcastChannel, and `storage` events of the shared storage. */
export class TabChannel {
  private bc: BroadcastChannel | undefined;
  private onStorage: ((e: StorageEvent) => void) | undefined;

  constructor(name: string, storageKey: string, shared: Storage | undefined, onMessage: (m: TabMessage) => void, decode: (raw: string | null) => Tokens | null) {
    const BC = (globalThis as { BroadcastChannel?: typeof BroadcastChannel }).BroadcastChannel;
    if (BC) {
      this.bc = new BC(name);
      this.bc.onmessage = (e: MessageEvent) => onMessage(e.data as TabMessage);
    }
    const target = globalThis as { addEventListener?: (t: string, l: (e: StorageEvent) => void) => void };
    if (shared && typeof target.addEventListener === 'function') {
      this.onStorage = (e: StorageEvent) => {
        if (e.storageArea !== shared || e.key !== storageKey) return;
        const t = decode(e.newValue);
        if (t) onMessage({ type: 'tokens', tokens: t, signedIn: false });
        else {
          const old = decode(e.oldValue);
          onMessage({ type: 'ended', access: old?.accessToken, refresh: old?.refreshToken, sessionId: old?.sessionId });
        }
      };
      target.addEventListener('storage', this.onStorage);
    }
  }

  post(m: TabMessage): void {
    this.bc?.postMessage(m);
  }

  close(): void {
    this.bc?.close();
    const target = globalThis as { removeEventListener?: (t: string, l: (e: StorageEvent) => void) => void };
    if (this.onStorage && typeof target.removeEventListener === 'function') target.removeEventListener('storage', this.onStorage);
  }
}

// @latchauth/client/node: what only Node (or Deno, Bun) has, kept out of the
// main entry so that browser bundles never import node:fs.

import { randomBytes } from 'node:crypto';
import { promises as fs, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

/** FileStorageOptions tune a FileStorage. */
export interface FileStorageOptions {
  /**
   * A lock file not kept fresh by its holder for this long is taken over:
   * its process died while holding it. The holder touches it every third of
   * this. Default 10 000 ms.
   */
  staleMs?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// The lock files this process holds, removed if it exits while holding them.
const held = new Set<string>();
let exitHook = false;

/**
 * FileStorage keeps the tokens in a file readable by its owner only
 * (mode 0600, its folder created 0700 if missing), written atomically
 * (a temporary file renamed over it). A leading `~` is the home folder.
 *
 * Processes sharing the file share one session, with the rule of the Go and
 * Python SDKs' FileStore: the client refreshes inside lock(), an exclusive
 * lock across processes (the file PATH.lock, created with O_EXCL), after
 * reading the file again, so a refresh token is never spent twice and a
 * rotation by another process is adopted instead. A logout by one of them is
 * found by the others at their next renewal (SessionEndedError,
 * `revoked_elsewhere`). It is a LockingStorage of `@latchauth/client`
 * (this entry imports nothing of it: it compiles against Node's types, the
 * main entry against the DOM's).
 *
 *     const latch = new LatchClient({ baseUrl, storage: new FileStorage('~/.latch-tokens.json') });
 */
export class FileStorage {
  /** The file's absolute path. */
  readonly path: string;
  private readonly lockPath: string;
  private readonly staleMs: number;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(path: string, opts: FileStorageOptions = {}) {
    this.path = resolve(expandHome(path));
    this.lockPath = `${this.path}.lock`;
    this.staleMs = opts.staleMs ?? 10_000;
  }

  async getItem(key: string): Promise<string | null> {
    return (await this.read())[key] ?? null;
  }

  async setItem(key: string, value: string): Promise<void> {
    const m = await this.read();
    m[key] = value;
    await this.write(m);
  }

  async removeItem(key: string): Promise<void> {
    const m = await this.read();
    if (!(key in m)) return;
    delete m[key];
    if (Object.keys(m).length === 0) await fs.rm(this.path, { force: true });
    else await this.write(m);
  }

  /**
   * lock runs fn while no other process (and no other client of this
   * FileStorage) holds the lock of this file. Calls queue in order.
   */
  lock<T>(_key: string, fn: () => Promise<T>): Promise<T> {
    const run = async () => {
      const release = await this.acquire();
      try {
        return await fn();
      } finally {
        await release();
      }
    };
    const next = this.tail.then(run, run);
    this.tail = next.catch(() => undefined);
    return next;
  }

  // read returns the file's entries; a missing or unreadable-as-JSON file has none.
  private async read(): Promise<Record<string, string>> {
    let raw: string;
    try {
      raw = await fs.readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return {};
      throw err;
    }
    try {
      const m = JSON.parse(raw) as unknown;
      return m && typeof m === 'object' && !Array.isArray(m) ? (m as Record<string, string>) : {};
    } catch {
      return {};
    }
  }

  private async write(m: Record<string, string>): Promise<void> {
    const dir = dirname(this.path);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = join(dir, `.latch-${randomBytes(6).toString('hex')}.tmp`);
    try {
      const fh = await fs.open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(JSON.stringify(m));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.rename(tmp, this.path);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  // acquire creates PATH.lock exclusively, waiting while another holds it,
  // and returns its release. A lock left stale by a dead process is moved
  // aside (rename is atomic: of two takers, one wins) and the wait goes on.
  private async acquire(): Promise<() => Promise<void>> {
    const id = `${process.pid}-${randomBytes(8).toString('hex')}`;
    for (;;) {
      try {
        const fh = await fs.open(this.lockPath, 'wx', 0o600);
        try {
          await fh.writeFile(id);
        } finally {
          await fh.close();
        }
        return this.holding(id);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'ENOENT') {
          await fs.mkdir(dirname(this.lockPath), { recursive: true, mode: 0o700 });
          continue;
        }
        if (code !== 'EEXIST') throw err;
      }
      if (await this.takeOverStale(id)) continue;
      await sleep(10 + Math.random() * 30);
    }
  }

  private holding(id: string): () => Promise<void> {
    held.add(this.lockPath);
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => {
        for (const p of held) rmSync(p, { force: true });
      });
    }
    const touch = setInterval(() => {
      const now = new Date();
      fs.utimes(this.lockPath, now, now).catch(() => undefined);
    }, Math.max(10, this.staleMs / 3));
    touch.unref?.();
    return async () => {
      clearInterval(touch);
      held.delete(this.lockPath);
      // Remove it only if it is still ours (not taken over after a stall).
      const cur = await fs.readFile(this.lockPath, 'utf8').catch(() => '');
      if (cur === id) await fs.rm(this.lockPath, { force: true });
    };
  }

  private async takeOverStale(id: string): Promise<boolean> {
    let st;
    try {
      st = await fs.stat(this.lockPath);
    } catch {
      return true; // released meanwhile: try again at once
    }
    if (Date.now() - st.mtimeMs <= this.staleMs) return false;
    const aside = `${this.lockPath}.${id}.stale`;
    try {
      await fs.rename(this.lockPath, aside);
    } catch {
      return true; // another process took it over first
    }
    // Between our stat and rename another process may have taken over and
    // locked anew: if what we moved is fresh, put it back.
    const moved = await fs.stat(aside).catch(() => undefined);
    if (moved && Date.now() - moved.mtimeMs <= this.staleMs) {
      await fs.link(aside, this.lockPath).catch(() => undefined);
    }
    await fs.rm(aside, { force: true });
    return true;
  }
}

/** expandHome replaces a leading `~` (alone or before a slash) by the home folder. */
function expandHome(p: string): string {
  if (p === '~') return homedir();
  if (p.startsWith('~/') || p.startsWith('~\\')) return join(homedir(), p.slice(2));
  return p;
}

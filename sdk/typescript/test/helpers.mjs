// Helpers of the SDK tests: the live latchd they run against (LATCHD_URL,
// LATCHD_LOG, started by tools/test-sdk.sh) and a recording proxy in front of
// it that can answer for latchd (429, 503, 500) or drop the connection, so
// that a test sees every request the SDK sent, and only those.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createHash, generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';

export const LATCHD_URL = process.env.LATCHD_URL;
export const LATCHD_LOG = process.env.LATCHD_LOG;
if (!LATCHD_URL || !LATCHD_LOG) {
  throw new Error('LATCHD_URL and LATCHD_LOG must be set: run the tests with tools/test-sdk.sh (make test-sdk)');
}

export const PASSWORD = 'correct horse battery staple';
export const email = (what) => `ts-${what}-${randomUUID().slice(0, 8)}@example.com`;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * startProxy forwards to latchd and records { method, path, status, at }.
 * proxy.rule(req) may return { status, headers, body } to answer instead,
 * 'drop' to destroy the connection, or { delayMs } to forward late.
 */
export async function startProxy() {
  const target = new URL(LATCHD_URL);
  const proxy = {
    url: '',
    close: async () => {},
    seen: [],
    /** @type {(req: { method: string, path: string, status: number, at: number, auth: string }) => any} */
    rule: (_req) => undefined,
    count(method, path) {
      return this.seen.filter((s) => s.method === method && s.path === path).length;
    },
  };
  const server = http.createServer((req, res) => {
    const path = req.url.split('?')[0];
    const entry = { method: req.method, path, status: 0, at: Date.now(), auth: req.headers.authorization ?? '' };
    proxy.seen.push(entry);
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const r = proxy.rule(entry);
      if (r === 'drop') {
        entry.status = -1;
        req.socket.destroy();
        return;
      }
      if (r && r.status) {
        entry.status = r.status;
        res.writeHead(r.status, { 'Content-Type': 'application/json', ...(r.headers ?? {}) });
        res.end(JSON.stringify(r.body ?? { error: r.status === 429 ? 'rate_limited' : r.status === 503 ? 'unavailable' : 'internal', message: 'injected by the test proxy', request_id: 'proxy' }));
        return;
      }
      if (r && r.delayMs) await sleep(r.delayMs);
      const up = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
        (ur) => {
          entry.status = ur.statusCode;
          res.writeHead(ur.statusCode, ur.headers);
          ur.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      up.end(Buffer.concat(chunks));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', () => r(undefined)));
  const addr = /** @type {import('node:net').AddressInfo} */ (server.address());
  proxy.url = `http://127.0.0.1:${addr.port}`;
  proxy.close = () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); });
  return proxy;
}

/** refreshLines counts latchd's access-log lines of POST /auth/refresh. */
export function refreshLines() {
  return readFileSync(LATCHD_LOG, 'utf8').split('\n').filter((l) => l.includes('path=/auth/refresh ')).length;
}

/** resetToken waits for the reset mail to `to` in latchd's log and returns its token. */
export async function resetToken(to, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const lines = readFileSync(LATCHD_LOG, 'utf8').split('\n').filter((l) => l.includes(`to=${to} `) && l.includes('reset-password#token='));
    if (lines.length > 0) return /reset-password#token=([A-Za-z0-9_-]+)/.exec(lines.at(-1))[1];
    await sleep(200);
  }
  throw new Error(`no reset mail to ${to} in the latchd log within ${timeoutMs} ms`);
}

/**
 * otpMail returns the code and the link's token (null when the mail has no
 * link) of the last sign-in mail to `to` in the latchd log (which shows
 * them: LATCH_MAIL_LOG_LINKS=true), waiting for it.
 */
export async function otpMail(to, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const lines = readFileSync(LATCHD_LOG, 'utf8').split('\n').filter((l) => l.includes(`to=${to} `) && l.includes('sign-in code is:'));
    if (lines.length > 0) {
      const line = lines.at(-1);
      const code = /sign-in code is:(?:\\n|\s)*([0-9]{6})/.exec(line)[1];
      const tok = /token=([A-Za-z0-9_-]{43})/.exec(line);
      return { code, token: tok ? tok[1] : null };
    }
    await sleep(200);
  }
  throw new Error(`no sign-in mail to ${to} in the latchd log within ${timeoutMs} ms`);
}

/** A clock the test moves: real time plus an offset. */
export function testClock() {
  const c = { offset: 0, now: () => Date.now() + c.offset };
  return c;
}

// cbor encodes what a software authenticator sends: integers, text, bytes,
// and maps given as [key, value] pairs in canonical order.
function cbor(v) {
  const head = (major, n) => new Uint8Array(n < 24 ? [(major << 5) | n] : n < 256 ? [(major << 5) | 24, n] : [(major << 5) | 25, n >> 8, n & 255]);
  if (typeof v === 'number') return v >= 0 ? head(0, v) : head(1, -1 - v);
  if (typeof v === 'string') return concat(head(3, Buffer.byteLength(v)), new TextEncoder().encode(v));
  if (v instanceof Uint8Array) return concat(head(2, v.length), v);
  return concat(head(5, v.length), ...v.flatMap(([k, x]) => [cbor(k), cbor(x)]));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const b64url = (b) => Buffer.from(b).toString('base64url');
const sha256 = (b) => new Uint8Array(createHash('sha256').update(b).digest());
const u32 = (n) => new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);

/**
 * softAuthenticator is a WebAuthn authenticator in software, as
 * internal/testutil/webauthn.go: one P-256 credential, "none" attestation,
 * user present and verified, not backup-eligible (a device-bound key).
 * create and get answer navigator.credentials.create() and .get() for a
 * ceremony's options ({ publicKey }) as a browser on `origin` would.
 */
export function softAuthenticator() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const credId = new Uint8Array(randomBytes(16));
  let user = new Uint8Array(0);
  let count = 0;
  const clientData = (type, challenge, origin) => new TextEncoder().encode(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
  const credential = (cd, response) => ({
    id: b64url(credId), rawId: b64url(credId), type: 'public-key', authenticatorAttachment: 'platform', clientExtensionResults: {},
    response: { clientDataJSON: b64url(cd), ...response },
  });
  return {
    create(options, origin) {
      const pk = options.publicKey;
      user = new Uint8Array(Buffer.from(pk.user.id, 'base64url'));
      const cose = cbor([[1, 2], [3, -7], [-1, 1], [-2, new Uint8Array(Buffer.from(jwk.x, 'base64url'))], [-3, new Uint8Array(Buffer.from(jwk.y, 'base64url'))]]);
      const authData = concat(sha256(pk.rp.id), new Uint8Array([0x45]), u32(count), new Uint8Array(16), new Uint8Array([0, credId.length]), credId, cose);
      const att = cbor([['fmt', 'none'], ['attStmt', []], ['authData', authData]]);
      return credential(clientData('webauthn.create', pk.challenge, origin), { attestationObject: b64url(att), transports: ['internal'] });
    },
    get(options, origin) {
      const pk = options.publicKey;
      count++;
      const authData = concat(sha256(pk.rpId), new Uint8Array([0x05]), u32(count));
      const cd = clientData('webauthn.get', pk.challenge, origin);
      const signature = sign('sha256', concat(authData, sha256(cd)), privateKey);
      return credential(cd, { authenticatorData: b64url(authData), signature: b64url(signature), userHandle: b64url(user) });
    },
  };
}

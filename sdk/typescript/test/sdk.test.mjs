// The TypeScript SDK against a live latchd (access TTL 10 s), through a
// recording proxy: every flow, refresh before expiry and after a 401,
// Retry-After, backoff, the end of a session, and the error types.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  LatchClient, LatchError, NetworkError, NotLoggedInError, ProviderSignInError, RefreshBackoffError, SessionEndedError,
} from '../dist/index.js';
import { FileStorage } from '../dist/node.js';
import { LATCHD_URL, PASSWORD, email, otpMail, refreshLines, resetToken, sleep, softAuthenticator, startProxy, testClock } from './helpers.mjs';

let proxy;
before(async () => { proxy = await startProxy(); });
after(async () => { await proxy.close(); });

// client returns a LatchClient through the proxy and the events it fired.
function client(opts = {}) {
  const c = new LatchClient({ baseUrl: proxy.url, ...opts });
  const events = { initialSession: [], signedIn: [], tokenRefreshed: [], signedOut: [] };
  for (const k of /** @type {(keyof typeof events)[]} */ (Object.keys(events))) c.on(k, (e) => events[k].push(e));
  return { c, events };
}

async function rejectsWith(promise, cls, check = (_e) => {}) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof cls, `want ${cls.name}, got ${err && err.stack ? err.stack : err}`);
  check(err);
  return err;
}

// The provider sign-in's two halves outside a browser (the whole flow runs
// in Chromium against oidc-provider: make test-browser-idp): the authorize
// URL carries the S256 challenge of the verifier kept in the storage, and
// the exchange sends that verifier once; a code Latch does not know is
// LatchError invalid_grant (this latchd has no provider:
// unsupported_grant_type), and without a started sign-in nothing is sent.
test('signInWithProvider and exchangeCodeForSession', async () => {
  const { createHash } = await import('node:crypto');
  // A proxy of its own: the other tests count the suite's /auth/token calls.
  const proxy = await startProxy();
  after(() => proxy.close());
  const storage = new Map();
  const c = new LatchClient({ baseUrl: proxy.url, storage: {
    getItem: (k) => storage.get(k) ?? null, setItem: (k, v) => void storage.set(k, v), removeItem: (k) => void storage.delete(k) } });
  const url = new URL(await c.signInWithProvider('google', { redirectTo: 'https://app.example.com/cb' }));
  assert.equal(url.origin + url.pathname, proxy.url + '/auth/providers/google/authorize');
  assert.equal(url.searchParams.get('redirect_to'), 'https://app.example.com/cb');
  assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
  const kept = JSON.parse(storage.get(`latch:${proxy.url}:pkce`));
  assert.ok(kept.verifier.length >= 43);
  assert.equal(url.searchParams.get('code_challenge'), createHash('sha256').update(kept.verifier).digest('base64url'));
  await rejectsWith(c.exchangeCodeForSession('not-a-code'), LatchError, (e) => {
    assert.ok(['invalid_grant', 'unsupported_grant_type'].includes(e.code), e.code);
  });
  assert.equal(storage.get(`latch:${proxy.url}:pkce`), undefined);
  const before = proxy.seen.length;
  await rejectsWith(c.exchangeCodeForSession('another'), ProviderSignInError, (e) => assert.equal(e.code, 'invalid_request'));
  assert.equal(proxy.seen.length, before);
  // Enterprise SSO starts from the email, with the same kept verifier.
  const sso = new URL(await c.signInWithSSO('ada@acme.example', { redirectTo: 'https://app.example.com/cb' }));
  assert.equal(sso.origin + sso.pathname, proxy.url + '/auth/sso');
  assert.equal(sso.searchParams.get('email'), 'ada@acme.example');
  assert.equal(sso.searchParams.get('redirect_to'), 'https://app.example.com/cb');
  const keptSSO = JSON.parse(storage.get(`latch:${proxy.url}:pkce`));
  assert.equal(sso.searchParams.get('code_challenge'), createHash('sha256').update(keptSSO.verifier).digest('base64url'));
  assert.notEqual(keptSSO.verifier, kept.verifier);
});

test('signup, me, sessions, login, error types', async () => {
  const { c, events } = client();
  const addr = email('flow');
  const r = await c.signUp(addr, PASSWORD);
  assert.equal(r.status, 'session_created');
  assert.ok(r.status === 'session_created' && r.access_token);
  assert.equal(events.signedIn.length, 1);
  const me = await c.me();
  assert.equal(me.email, addr);
  const list = await c.sessions();
  assert.equal(list.sessions.filter((s) => s.current).length, 1);

  // Typed errors carry the Error body.
  await rejectsWith(c.signUp(addr, PASSWORD), LatchError, (e) => {
    assert.equal(e.status, 409);
    assert.equal(e.code, 'email_taken');
    assert.ok(e.requestId.length > 0);
  });
  const other = client().c;
  await rejectsWith(other.signIn(addr, 'wrong password, surely'), LatchError, (e) => {
    assert.equal(e.status, 401);
    assert.equal(e.code, 'invalid_credentials');
    assert.ok(e.detail.length > 0);
  });
  await other.signIn(addr, PASSWORD);
  assert.equal((await other.me()).id, me.id);
  assert.equal((await c.sessions()).sessions.length, 2);

  // Without a session nothing is sent.
  const fresh = client().c;
  const before = proxy.seen.length;
  await rejectsWith(fresh.me(), NotLoggedInError);
  assert.equal(proxy.seen.length, before);
});

test('refresh before expiry runs in the background; the caller with a valid token does not wait', async () => {
  const clock = testClock();
  const { c, events } = client({ now: clock.now });
  await c.signUp(email('proactive'), PASSWORD);
  const first = (await c.tokens()).accessToken;
  const refreshesBefore = proxy.count('POST', '/auth/refresh');
  // 8.5 s on: inside the margin (a fifth of the lifetime + jitter), still valid.
  clock.offset = 8_500;
  proxy.rule = (req) => (req.path === '/auth/refresh' ? { delayMs: 1500 } : undefined);
  const me = await c.me();
  assert.ok(me.id);
  // The call came back while the refresh was still held by the proxy.
  assert.equal(events.tokenRefreshed.length, 0, 'the call waited for the refresh');
  const meCall = proxy.seen.filter((s) => s.path === '/auth/me').at(-1);
  assert.equal(meCall.auth, `Bearer ${first}`);
  while (events.tokenRefreshed.length === 0) await sleep(50);
  proxy.rule = () => undefined;
  assert.equal(proxy.count('POST', '/auth/refresh'), refreshesBefore + 1);
  assert.notEqual((await c.tokens()).accessToken, first);
  await c.me();
  assert.equal(proxy.seen.filter((s) => s.path === '/auth/me').at(-1).auth, `Bearer ${(await c.tokens()).accessToken}`);
  assert.equal(proxy.count('POST', '/auth/refresh'), refreshesBefore + 1, 'a fresh token refreshed again');
});

test('single flight: 20 concurrent calls with an expired token make one refresh', async () => {
  const clock = testClock();
  const { c } = client({ now: clock.now });
  await c.signUp(email('flight'), PASSWORD);
  const n = proxy.count('POST', '/auth/refresh');
  clock.offset = 11_000;
  const all = await Promise.all(Array.from({ length: 20 }, () => c.me()));
  assert.equal(all.length, 20);
  assert.equal(proxy.count('POST', '/auth/refresh'), n + 1);
});

test('a 401 token_expired refreshes once and retries the request', async () => {
  const clock = testClock();
  const { c, events } = client({ now: clock.now });
  await c.signUp(email('expired'), PASSWORD);
  // The client believes its token fresh; the server will not.
  clock.offset = -60_000;
  await sleep(11_000);
  const start = proxy.seen.length;
  const me = await c.me();
  assert.ok(me.id);
  const seen = proxy.seen.slice(start).map((s) => `${s.method} ${s.path} ${s.status}`);
  assert.deepEqual(seen, ['GET /auth/me 401', 'POST /auth/refresh 200', 'GET /auth/me 200']);
  assert.equal(events.tokenRefreshed.length, 1);
});

test('Retry-After on 429 and 503 is honoured; a non-idempotent call is not retried after a 503', async () => {
  const { c } = client({ retry: { baseDelayMs: 50 } });
  await c.signUp(email('retry'), PASSWORD);
  let n = 0;
  proxy.rule = (req) => (req.path === '/auth/me' && n++ === 0 ? { status: 429, headers: { 'Retry-After': '1' } } : undefined);
  const start = proxy.seen.length;
  await c.me();
  let mes = proxy.seen.slice(start).filter((s) => s.path === '/auth/me');
  assert.deepEqual(mes.map((s) => s.status), [429, 200]);
  assert.ok(mes[1].at - mes[0].at >= 1000, `retried after ${mes[1].at - mes[0].at} ms, before Retry-After`);

  n = 0;
  proxy.rule = (req) => (req.path === '/auth/me' && n++ === 0 ? { status: 503, headers: { 'Retry-After': '1' } } : undefined);
  const start2 = proxy.seen.length;
  await c.me();
  mes = proxy.seen.slice(start2).filter((s) => s.path === '/auth/me');
  assert.deepEqual(mes.map((s) => s.status), [503, 200]);
  assert.ok(mes[1].at - mes[0].at >= 1000);

  // POST /api-keys answered 503: the server may have acted; not retried.
  proxy.rule = (req) => (req.path === '/api-keys' && req.method === 'POST' ? { status: 503, headers: { 'Retry-After': '1' } } : undefined);
  const posts = proxy.count('POST', '/api-keys');
  const r = await c.api.POST('/api-keys', { body: { label: 'k', scopes: ['keys:read'] } });
  assert.equal(r.response.status, 503);
  await rejectsWith(c.unwrap(r), LatchError, (e) => {
    assert.equal(e.code, 'unavailable');
    assert.equal(e.retryAfterMs, 1000);
  });
  assert.equal(proxy.count('POST', '/api-keys'), posts + 1);
  // ...but a 429 (the server did not act) is.
  n = 0;
  proxy.rule = (req) => (req.path === '/api-keys' && req.method === 'POST' && n++ === 0 ? { status: 429, headers: { 'Retry-After': '1' } } : undefined);
  const r2 = await c.api.POST('/api-keys', { body: { label: 'k2', scopes: ['keys:read'] } });
  assert.equal(r2.response.status, 201);
  assert.equal(proxy.count('POST', '/api-keys'), posts + 3);
  proxy.rule = () => undefined;
});

test('a refresh answered 429 is remembered: expired callers get RefreshBackoffError, valid ones go ahead, nothing is retried early', async () => {
  const clock = testClock();
  const { c } = client({ now: clock.now });
  await c.signUp(email('backoff429'), PASSWORD);
  proxy.rule = (req) => (req.path === '/auth/refresh' ? { status: 429, headers: { 'Retry-After': '5' } } : undefined);
  const n = proxy.count('POST', '/auth/refresh');
  clock.offset = 11_000; // expired, as far as the client knows
  const err = await rejectsWith(c.me(), RefreshBackoffError, (e) => {
    assert.ok(e.retryAfterMs >= 5000, `backs off ${e.retryAfterMs} ms, less than Retry-After`);
    assert.ok(e.cause instanceof LatchError);
    assert.equal(e.cause.code, 'rate_limited');
  });
  const sent = proxy.seen.length;
  await rejectsWith(c.me(), RefreshBackoffError, (e) => assert.equal(e.retryAt, err.retryAt));
  assert.equal(proxy.seen.length, sent, 'a call during the backoff sent a request');
  assert.equal(proxy.count('POST', '/auth/refresh'), n + 1);
  // After the backoff the refresh is tried again.
  proxy.rule = () => undefined;
  clock.offset = 11_000 + err.retryAfterMs + 1;
  // The token is expired on this clock: the call waits for the refresh.
  assert.ok((await c.me()).id);
  assert.equal(proxy.count('POST', '/auth/refresh'), n + 2);
});

test('a caller with a valid token goes ahead while the refresh backs off', async () => {
  const clock = testClock();
  const { c } = client({ now: clock.now });
  await c.signUp(email('valid'), PASSWORD);
  proxy.rule = (req) => (req.path === '/auth/refresh' ? { status: 503, headers: { 'Retry-After': '30' } } : undefined);
  const n = proxy.count('POST', '/auth/refresh');
  clock.offset = 8_500; // due, still valid
  for (let i = 0; i < 5; i++) assert.ok((await c.me()).id);
  await sleep(100);
  assert.equal(proxy.count('POST', '/auth/refresh'), n + 1, 'the background refresh was repeated during the backoff');
  proxy.rule = () => undefined;
});

test('network errors and 5xx back off exponentially with jitter; a dropped refresh is replayed once', async () => {
  const clock = testClock();
  const { c } = client({ now: clock.now, retry: { baseDelayMs: 1000, maxDelayMs: 4000 } });
  await c.signUp(email('backoff5xx'), PASSWORD);
  clock.offset = 11_000;
  const n = proxy.count('POST', '/auth/refresh');
  proxy.rule = (req) => (req.path === '/auth/refresh' ? 'drop' : undefined);
  const e1 = await rejectsWith(c.me(), RefreshBackoffError);
  assert.ok(e1.retryAfterMs >= 500 && e1.retryAfterMs <= 1000, `first backoff ${e1.retryAfterMs}`);
  assert.ok(!(e1.cause instanceof LatchError), 'a network error');
  assert.equal(proxy.count('POST', '/auth/refresh'), n + 2, 'dropped refresh replayed exactly once');
  proxy.rule = (req) => (req.path === '/auth/refresh' ? { status: 500 } : undefined);
  clock.offset += e1.retryAfterMs;
  const e2 = await rejectsWith(c.me(), RefreshBackoffError);
  assert.ok(e2.retryAfterMs >= 1000 && e2.retryAfterMs <= 2000, `second backoff ${e2.retryAfterMs}`);
  assert.equal(e2.cause.status, 500);
  clock.offset += e2.retryAfterMs;
  const e3 = await rejectsWith(c.me(), RefreshBackoffError);
  assert.ok(e3.retryAfterMs >= 2000 && e3.retryAfterMs <= 4000, `third backoff ${e3.retryAfterMs}`);
  clock.offset += e3.retryAfterMs;
  const e4 = await rejectsWith(c.me(), RefreshBackoffError);
  assert.ok(e4.retryAfterMs >= 2000 && e4.retryAfterMs <= 4000, `capped backoff ${e4.retryAfterMs}`);
  assert.equal(proxy.count('POST', '/auth/refresh'), n + 5);
  proxy.rule = () => undefined;
  clock.offset += e4.retryAfterMs;
  assert.ok((await c.me()).id);
});

test('a session revoked elsewhere ends: signedOut(invalid_grant) once, then nothing is sent', async () => {
  const addr = email('revoked');
  const { c, events } = client();
  await c.signUp(addr, PASSWORD);
  const sid = (await c.tokens()).sessionId;
  const { c: other } = client();
  await other.signIn(addr, PASSWORD);
  await other.revokeSession(sid);
  await rejectsWith(c.me(), SessionEndedError, (e) => {
    assert.equal(e.reason, 'invalid_grant');
    assert.equal(e.cause.code, 'invalid_grant');
  });
  assert.deepEqual(events.signedOut.map((e) => e.reason), ['invalid_grant']);
  const sent = proxy.seen.length;
  await rejectsWith(c.me(), SessionEndedError);
  await rejectsWith(c.sessions(), SessionEndedError);
  await rejectsWith(c.refresh(), SessionEndedError);
  assert.equal(proxy.seen.length, sent, 'an ended session sent a request');
  assert.equal(events.signedOut.length, 1);
  assert.equal(await c.tokens(), null);
  // A new login opens a new session.
  await c.signIn(addr, PASSWORD);
  assert.ok((await c.me()).id);
});

test('logout scopes: others, local, global', async () => {
  const addr = email('logout');
  const a = client(); const b = client(); const d = client();
  await a.c.signUp(addr, PASSWORD);
  await b.c.signIn(addr, PASSWORD);
  await d.c.signIn(addr, PASSWORD);
  await a.c.logout('others');
  assert.equal(a.events.signedOut.length, 0);
  assert.ok((await a.c.me()).id);
  await rejectsWith(b.c.me(), SessionEndedError, (e) => assert.equal(e.reason, 'invalid_grant'));
  await rejectsWith(d.c.me(), SessionEndedError);
  await a.c.logout('local');
  assert.deepEqual(a.events.signedOut.map((e) => e.reason), ['logout']);
  const sent = proxy.seen.length;
  await rejectsWith(a.c.me(), SessionEndedError, (e) => assert.equal(e.reason, 'logout'));
  assert.equal(proxy.seen.length, sent);
  // global
  await b.c.signIn(addr, PASSWORD);
  await d.c.signIn(addr, PASSWORD);
  await b.c.logout('global');
  await rejectsWith(d.c.me(), SessionEndedError);
  assert.deepEqual(b.events.signedOut.map((e) => e.reason), ['invalid_grant', 'logout']);
});

test('API keys and exchange mode: renewed before expiry, a valid token kept when renewal fails', async () => {
  const { c } = client();
  await c.signUp(email('keys'), PASSWORD);
  const created = await c.createAPIKey({ label: 'backend', scopes: ['token:exchange', 'users:read', 'billing:read'] });
  assert.match(created.key, /^latch_u_/);
  const listed = await c.unwrap(await c.api.GET('/api-keys'));
  assert.equal(listed.api_keys.length, 1);

  const clock = testClock();
  const svc = client({ apiKey: created.key, exchange: { scopes: ['users:read', 'billing:read'], expires_in: 60 }, now: clock.now });
  const me = await svc.c.me();
  assert.equal(me.id, (await c.me()).id);
  const tok = await svc.c.tokens();
  assert.deepEqual(tok.scope.split(' ').sort(), ['billing:read', 'users:read']);
  const exchanges = proxy.count('POST', '/auth/token');
  assert.equal(exchanges, 1);
  // Due (12 s margin of 60 s), still valid; the renewal fails: the token stays.
  clock.offset = 50_000;
  proxy.rule = (req) => (req.path === '/auth/token' ? { status: 503, headers: { 'Retry-After': '30' } } : undefined);
  assert.ok((await svc.c.me()).id);
  await sleep(100);
  assert.equal((await svc.c.tokens()).accessToken, tok.accessToken);
  assert.ok((await svc.c.me()).id);
  assert.equal(proxy.count('POST', '/auth/token'), 2, 'renewal repeated during its backoff');
  proxy.rule = () => undefined;
  clock.offset = 50_000 + 31_000 + 3_000; // past Retry-After (+ jitter): renewed
  // expired on this clock: waits for the renewal
  assert.ok((await svc.c.me()).id);
  assert.notEqual((await svc.c.tokens()).accessToken, tok.accessToken);
  assert.equal(proxy.count('POST', '/auth/token'), 3);

  // A revoked key cannot renew: a permanent refusal, thrown as it is, at
  // once, and not sent again.
  await c.unwrap(await c.api.DELETE('/api-keys/{key_id}', { params: { path: { key_id: created.id } } }));
  clock.offset += 61_000;
  const refused = await rejectsWith(svc.c.me(), LatchError, (e) => assert.equal(e.status, 401));
  assert.equal(proxy.count('POST', '/auth/token'), 4);
  await rejectsWith(svc.c.me(), LatchError, (e) => assert.equal(e, refused));
  await rejectsWith(svc.c.accessToken(), LatchError, (e) => assert.equal(e, refused));
  assert.equal(proxy.count('POST', '/auth/token'), 4, 'a permanent refusal was retried');
});

test('a permanent exchange error (403: a scope the key lacks) is the LatchError at once, never RefreshBackoffError, and is not retried', async () => {
  const { c } = client();
  await c.signUp(email('keys403'), PASSWORD);
  const created = await c.createAPIKey({ label: 'narrow', scopes: ['token:exchange', 'billing:read'] });
  const svc = client({ apiKey: created.key, exchange: { scopes: ['billing:write'] } });
  const n = proxy.count('POST', '/auth/token');
  const e1 = await rejectsWith(svc.c.accessToken(), LatchError, (e) => {
    assert.equal(e.status, 403);
    assert.ok(!(e instanceof RefreshBackoffError));
  });
  assert.equal(proxy.count('POST', '/auth/token'), n + 1);
  await rejectsWith(svc.c.me(), LatchError, (e) => assert.equal(e, e1));
  assert.equal(proxy.count('POST', '/auth/token'), n + 1, 'the refused exchange was sent again');
  // What the key holds is exchanged.
  const ok = client({ apiKey: created.key, exchange: { scopes: ['billing:read'] } });
  assert.equal((await ok.c.tokens()), null);
  assert.ok((await ok.c.accessToken()).length > 0);
  assert.equal((await ok.c.tokens()).scope, 'billing:read');
});

test('password reset through the mail log ends the old session', async () => {
  const addr = email('reset');
  const { c, events } = client();
  await c.signUp(addr, PASSWORD);
  const { c: anon } = client();
  await anon.unwrap(await anon.api.POST('/auth/password/forgot', { body: { email: addr } }));
  const token = await resetToken(addr);
  const newPassword = 'another horse battery staple';
  await anon.unwrap(await anon.api.POST('/auth/password/reset', { body: { token, password: newPassword } }));
  await rejectsWith(anon.signIn(addr, PASSWORD), LatchError, (e) => assert.equal(e.code, 'invalid_credentials'));
  await anon.signIn(addr, newPassword);
  assert.equal((await anon.me()).email, addr);
  await rejectsWith(c.me(), SessionEndedError);
  assert.deepEqual(events.signedOut.map((e) => e.reason), ['invalid_grant']);
});

test('email sign-in: signInWithOtp, verifyOtp with the code and with the link token, replay refused, createUser', async () => {
  const addr = email('otp');
  const { c } = client();
  await c.signUp(addr, PASSWORD);
  const { c: anon, events } = client();
  await anon.signInWithOtp({ email: addr });
  const { code } = await otpMail(addr);
  const r = await anon.verifyOtp({ email: addr, code });
  assert.equal(r.mfa, null);
  assert.equal(r.tokens.aal, 'aal1');
  assert.equal(events.signedIn.length, 1);
  assert.equal((await anon.me()).email, addr);
  await rejectsWith(client().c.verifyOtp({ email: addr, code }), LatchError, (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.code, 'invalid_token');
  });

  // The link's token, through redirectTo (LATCH_OTP_REDIRECT_URLS).
  const other = email('otp-link');
  await client().c.signUp(other, PASSWORD);
  const { c: linked } = client();
  await linked.signInWithOtp({ email: other, redirectTo: 'http://app.test/callback' });
  const mail = await otpMail(other);
  assert.ok(mail.token);
  assert.equal((await linked.verifyOtp({ token: mail.token })).tokens.user.email, other);
  await rejectsWith(client().c.verifyOtp({ token: mail.token }), LatchError, (e) => assert.equal(e.code, 'invalid_token'));
  await rejectsWith(anon.signInWithOtp({ email: addr, redirectTo: 'https://evil.test/' }), LatchError, (e) => assert.equal(e.code, 'invalid_request'));

  // createUser makes the account on verification, its email verified.
  const fresh = email('otp-new');
  const { c: created } = client();
  await created.signInWithOtp({ email: fresh, createUser: true });
  const made = await created.verifyOtp({ email: fresh, code: (await otpMail(fresh)).code });
  assert.equal(made.tokens.user.email, fresh);
  assert.equal((await created.me()).email_verified, true);
});

test('a custom async storage keeps the session for the next client', async () => {
  const m = new Map();
  const storage = {
    getItem: async (k) => m.get(k) ?? null,
    setItem: async (k, v) => { m.set(k, v); },
    removeItem: async (k) => { m.delete(k); },
  };
  const { c } = client({ storage, storageKey: 'app' });
  const addr = email('store');
  await c.signUp(addr, PASSWORD);
  assert.ok(m.has('app'));
  const { c: next } = client({ storage, storageKey: 'app' });
  assert.equal((await next.me()).email, addr);
  // A refresh by one is adopted by the other under the lock, not repeated.
  const n = proxy.count('POST', '/auth/refresh');
  await c.refresh();
  await next.refresh();
  assert.equal(proxy.count('POST', '/auth/refresh'), n + 1);
  assert.equal((await next.tokens()).accessToken, (await c.tokens()).accessToken);
  // The other one logs out: the storage is empty, so this one's session
  // ended elsewhere, found at its next renewal.
  await next.logout();
  assert.equal(m.has('app'), false);
  await rejectsWith(c.refresh(), SessionEndedError, (e) => assert.equal(e.reason, 'revoked_elsewhere'));
});

// totp is RFC 6238 (SHA-1, 6 digits, 30 s) of a base32 secret at a time in ms.
function totp(secret, at = Date.now()) {
  const bits = secret.replace(/=+$/, '').toUpperCase().split('')
    .map((ch) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'.indexOf(ch).toString(2).padStart(5, '0')).join('');
  const key = new Uint8Array(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = new Uint8Array(8);
  new DataView(counter.buffer).setBigUint64(0, BigInt(Math.floor(at / 30_000)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const off = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(off) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

// claims decodes the payload of a JWT (no verification: the test reads its own token).
const claims = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());

test('MFA: TOTP enrolment, a pending second factor, a wrong code, a recovery code, removal', async () => {
  const addr = email('mfa');
  const { c, events } = client();
  await c.signUp(addr, PASSWORD);
  const plain = await client().c.signIn(addr, PASSWORD);
  assert.equal(plain.mfa, null, 'no factor, nothing pending');
  assert.equal((await c.mfa.factors()).factors.length, 0);
  await rejectsWith(c.mfa.beginWebAuthn(), LatchError, (e) => assert.equal(e.code, 'not_found'));

  // Enrol and confirm: the session is raised to aal2 and its new tokens are held.
  const en = await c.mfa.enrollTOTP('Phone');
  assert.equal(en.factor.verified, false);
  assert.match(en.otpauth_uri, /^otpauth:\/\/totp\//);
  const before = await c.tokens();
  const conf = await c.mfa.confirmTOTP(en.factor.id, totp(en.secret));
  assert.equal(conf.recovery_codes.length, 10);
  assert.equal(conf.tokens.aal, 'aal2');
  const held = await c.tokens();
  assert.equal(held.accessToken, conf.tokens.access_token);
  assert.notEqual(held.refreshToken, before.refreshToken);
  assert.equal(held.sessionId, before.sessionId);
  assert.equal(claims(held.accessToken).aal, 'aal2');
  assert.equal(events.signedIn.length, 2);

  // Signing in again leaves the TOTP factor pending at aal1.
  const { c: other, events: oev } = client();
  const r = await other.signIn(addr, PASSWORD);
  assert.ok(r.mfa && r.mfa.factors.some((f) => f.id === en.factor.id && f.type === 'totp'));
  assert.equal(r.tokens.aal, 'aal1');
  const aal1 = await other.tokens();
  assert.equal(claims(aal1.accessToken).aal, 'aal1');
  await rejectsWith(other.mfa.regenerateRecoveryCodes(), LatchError, (e) => {
    assert.equal(e.status, 403);
    assert.equal(e.code, 'mfa_required');
  });
  await rejectsWith(other.mfa.enrollTOTP(), LatchError, (e) => assert.equal(e.code, 'mfa_required'));

  // A wrong code is the typed error and changes nothing held.
  const valid = [-30_000, 0, 30_000].map((d) => totp(en.secret, Date.now() + d));
  let wrong = '000000';
  while (valid.includes(wrong)) wrong = String(Number(wrong) + 1).padStart(6, '0');
  await rejectsWith(other.mfa.verifyTOTP(wrong), LatchError, (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.code, 'mfa_verification_failed');
  });
  assert.equal((await other.tokens()).accessToken, aal1.accessToken);

  // A recovery code raises the same session; the client holds the new tokens.
  const up = await other.mfa.verifyRecoveryCode(conf.recovery_codes[0]);
  assert.equal(up.aal, 'aal2');
  assert.equal(up.session_id, r.tokens.session_id);
  const raised = await other.tokens();
  assert.equal(raised.accessToken, up.access_token);
  assert.notEqual(raised.accessToken, aal1.accessToken);
  assert.notEqual(raised.refreshToken, aal1.refreshToken);
  assert.equal(claims(raised.accessToken).aal, 'aal2');
  assert.equal(oev.signedIn.length, 2);
  await other.refresh();
  assert.equal(claims((await other.tokens()).accessToken).aal, 'aal2', 'a refresh keeps aal2');
  const list = await other.mfa.factors();
  assert.equal(list.aal, 'aal2');
  assert.deepEqual(list.factors.map((f) => [f.id, f.verified]), [[en.factor.id, true]]);
  assert.equal(list.recovery_codes_remaining, 9);

  // A spent recovery code is refused; a TOTP code of the next step is accepted, once.
  const { c: third } = client();
  await third.signIn(addr, PASSWORD);
  await rejectsWith(third.mfa.verifyRecoveryCode(conf.recovery_codes[0]), LatchError, (e) => assert.equal(e.code, 'mfa_verification_failed'));
  const next = totp(en.secret, Date.now() + 30_000);
  assert.equal((await third.mfa.verifyTOTP(next)).aal, 'aal2');
  const { c: fourth } = client();
  await fourth.signIn(addr, PASSWORD);
  await rejectsWith(fourth.mfa.verifyTOTP(next), LatchError, (e) => assert.equal(e.code, 'mfa_verification_failed'));

  const codes = await other.mfa.regenerateRecoveryCodes();
  assert.equal(codes.length, 10);
  await other.mfa.removeFactor(en.factor.id);
  assert.equal((await other.mfa.factors()).factors.length, 0);
  assert.equal((await client().c.signIn(addr, PASSWORD)).mfa, null);
});

test('MFA: a WebAuthn second factor (a software authenticator): beginWebAuthn, verifyWebAuthn', async () => {
  const addr = email('webauthn');
  const { c } = client();
  await c.signUp(addr, PASSWORD);
  // Registering is not an SDK method: the typed api does it.
  const key = softAuthenticator();
  const reg = await c.unwrap(await c.api.POST('/auth/mfa/webauthn/registration'));
  const done = await c.unwrap(await c.api.POST('/auth/mfa/webauthn/registration/finish', { body: { name: 'Key', credential: key.create(reg.options, LATCHD_URL) } }));
  assert.equal(done.factor.type, 'webauthn');

  const { c: other } = client();
  const r = await other.signIn(addr, PASSWORD);
  assert.ok(r.mfa && r.mfa.factors.some((f) => f.id === done.factor.id && f.type === 'webauthn'));
  const aal1 = await other.tokens();
  // An assertion made for another origin is refused.
  const first = await other.mfa.beginWebAuthn();
  await rejectsWith(other.mfa.verifyWebAuthn(key.get(first, 'https://evil.example')), LatchError, (e) => assert.equal(e.code, 'mfa_verification_failed'));
  const options = await other.mfa.beginWebAuthn();
  const pk = /** @type {{ challenge: string, allowCredentials: { id: string }[] }} */ (options.publicKey);
  assert.ok(pk.challenge.length > 0);
  assert.notEqual(pk.challenge, /** @type {any} */ (first.publicKey).challenge);
  const up = await other.mfa.verifyWebAuthn(key.get(options, LATCHD_URL));
  assert.equal(up.aal, 'aal2');
  assert.equal(up.session_id, r.tokens.session_id);
  const held = await other.tokens();
  assert.equal(held.accessToken, up.access_token);
  assert.notEqual(held.refreshToken, aal1.refreshToken);
  assert.deepEqual(claims(held.accessToken).amr, ['pwd', 'hwk', 'mfa']);
});

test('initialSession comes first, once per handler, with what the storage held; a throwing handler is reported and the client goes on', async () => {
  const m = new Map();
  const storage = { getItem: async (k) => m.get(k) ?? null, setItem: async (k, v) => { m.set(k, v); }, removeItem: async (k) => { m.delete(k); } };
  // Nothing stored: initialSession says so, before signedIn.
  const order = [];
  const first = new LatchClient({ baseUrl: proxy.url, storage, storageKey: 'init' });
  for (const k of /** @type {const} */ (['initialSession', 'signedIn', 'tokenRefreshed', 'signedOut'])) first.on(k, (e) => order.push([k, e]));
  const addr = email('init');
  await first.signUp(addr, PASSWORD);
  assert.deepEqual(order.map(([k]) => k), ['initialSession', 'signedIn']);
  assert.equal(order[0][1].tokens, null);

  // A session in the storage: the next client finds it; a handler added
  // after the read is called with it too, once.
  const seen = [];
  const reported = [];
  const next = new LatchClient({ baseUrl: proxy.url, storage, storageKey: 'init', onHandlerError: (err, event) => reported.push([event, err instanceof Error ? err.message : String(err)]) });
  next.on('initialSession', (e) => seen.push(['early', e.tokens?.accessToken]));
  next.on('initialSession', () => { throw new Error('boom'); });
  assert.equal((await next.me()).email, addr);
  next.on('initialSession', (e) => seen.push(['late', e.tokens?.accessToken]));
  await sleep(0);
  const stored = (await first.tokens()).accessToken;
  assert.deepEqual(seen, [['early', stored], ['late', stored]]);
  assert.deepEqual(reported, [['initialSession', 'boom']]);

  // The session ends before anyone listened for it: signedOut still comes after initialSession.
  const sid = (await first.tokens()).sessionId;
  const third = new LatchClient({ baseUrl: proxy.url, storage, storageKey: 'init' });
  const order3 = [];
  third.on('signedOut', (e) => order3.push(`signedOut:${e.reason}`));
  third.on('initialSession', (e) => order3.push(`initialSession:${e.tokens ? 'found' : 'none'}`));
  await first.revokeSession(sid);
  await rejectsWith(third.refresh(), SessionEndedError);
  assert.deepEqual(order3, ['initialSession:found', 'signedOut:invalid_grant']);

  // A storage that cannot be read at start: no session restored, and said so.
  let fail = true;
  const flaky = { ...storage, getItem: async (k) => { if (fail) { fail = false; throw new Error('disk on fire'); } return m.get(k) ?? null; } };
  const told = [];
  const fourth = new LatchClient({ baseUrl: proxy.url, storage: flaky, storageKey: 'init-flaky', onHandlerError: (err, event) => told.push([event, String(err), String(/** @type {Error} */ (err).cause)]) });
  const initial = await new Promise((r) => fourth.on('initialSession', r));
  assert.equal(initial.tokens, null);
  assert.deepEqual(told, [['initialSession', 'Error: latch: cannot read the storage; no session restored', 'Error: disk on fire']]);

  // The default reporter is console.error; a throwing signedIn handler breaks nothing.
  const errors = [];
  const orig = console.error;
  console.error = (...args) => errors.push(args.map(String).join(' '));
  try {
    const c = new LatchClient({ baseUrl: proxy.url });
    c.on('signedIn', () => { throw new Error('handler failed'); });
    await c.signIn(addr, PASSWORD);
    assert.equal((await c.me()).email, addr);
  } finally {
    console.error = orig;
  }
  assert.equal(errors.length, 1);
  assert.match(errors[0], /^latch: signedIn: .*handler failed/);
});

test('NetworkError: a closed port, and a server that never answers within timeoutMs; the caller\'s own abort is its own', async () => {
  const closed = http.createServer();
  await new Promise((r) => closed.listen(0, '127.0.0.1', () => r(undefined)));
  const port = /** @type {import('node:net').AddressInfo} */ (closed.address()).port;
  await new Promise((r) => closed.close(r));
  const down = new LatchClient({ baseUrl: `http://127.0.0.1:${port}` });
  await rejectsWith(down.signUp(email('down'), PASSWORD), NetworkError, (e) => {
    assert.equal(e.timedOut, false);
    assert.ok(e.cause instanceof Error);
  });

  const sockets = new Set();
  const silent = http.createServer(() => {}); // accepts, never answers
  silent.on('connection', (s) => sockets.add(s));
  await new Promise((r) => silent.listen(0, '127.0.0.1', () => r(undefined)));
  try {
    const url = `http://127.0.0.1:${/** @type {import('node:net').AddressInfo} */ (silent.address()).port}`;
    const slow = new LatchClient({ baseUrl: url, timeoutMs: 200 });
    await rejectsWith(slow.signIn(email('slow'), PASSWORD), NetworkError, (e) => {
      assert.equal(e.timedOut, true);
      assert.match(e.message, /within 200 ms/);
    });
    // The caller's signal aborts with the caller's reason, not a NetworkError.
    const patient = new LatchClient({ baseUrl: url });
    const ac = new AbortController();
    const pending = patient.api.GET('/health', { signal: ac.signal });
    ac.abort(new Error('user went away'));
    await rejectsWith(pending, Error, (e) => {
      assert.ok(!(e instanceof NetworkError));
      assert.equal(e.message, 'user went away');
    });
    // A refresh that times out backs off with a NetworkError as its cause.
    const clock = testClock();
    const { c } = client({ now: clock.now, refreshTimeoutMs: 200 });
    await c.signUp(email('refresh-timeout'), PASSWORD);
    proxy.rule = (req) => (req.path === '/auth/refresh' ? { delayMs: 1000 } : undefined);
    clock.offset = 11_000;
    await rejectsWith(c.me(), RefreshBackoffError, (e) => {
      assert.ok(e.cause instanceof NetworkError);
      assert.equal(e.cause.timedOut, true);
    });
  } finally {
    proxy.rule = () => undefined;
    // The proxy still forwards the refreshes it held: let them land before the next test counts refreshes.
    while (proxy.seen.some((s) => s.path === '/auth/refresh' && s.status === 0)) await sleep(50);
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
  }
});

test('CommonJS: require() loads the same API (and the node entry) and it works', async () => {
  const require = createRequire(import.meta.url);
  const cjs = require('@latchauth/client');
  const node = require('@latchauth/client/node');
  assert.equal(typeof cjs.LatchClient, 'function');
  assert.equal(typeof node.FileStorage, 'function');
  assert.notEqual(cjs.LatchClient, LatchClient, 'require() loaded the ESM build');
  const c = new cjs.LatchClient({ baseUrl: proxy.url });
  const addr = email('cjs');
  await c.signUp(addr, PASSWORD);
  assert.equal((await c.me()).email, addr);
  await assert.rejects(c.signIn(addr, 'wrong password, surely'), (e) => e instanceof cjs.LatchError && e.code === 'invalid_credentials');
});

// runChild starts test/fileproc.mjs and returns its JSON lines as they come.
function runChild(args) {
  const child = spawn(process.execPath, [new URL('./fileproc.mjs', import.meta.url).pathname, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  const waiters = [];
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
      for (const w of waiters.splice(0)) w();
    }
  });
  const exited = new Promise((r) => child.on('exit', (code) => r(code)));
  return {
    child, lines, exited,
    async next(type) {
      for (;;) {
        const l = lines.find((x) => x.type === type);
        if (l) return l;
        if (child.exitCode !== null) throw new Error(`child exited (${child.exitCode}) before "${type}"`);
        await new Promise((r) => { waiters.push(r); setTimeout(r, 200); });
      }
    },
  };
}

test('FileStorage: two processes share one session; each refresh is made once, the other process adopts it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'latch-file-'));
  try {
    const path = join(dir, 'sub', 'tokens.json');
    const store = new FileStorage(path);
    const c = new LatchClient({ baseUrl: LATCHD_URL, storage: store });
    assert.equal(c.lockKind, 'storage');
    const addr = email('files');
    await c.signUp(addr, PASSWORD);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'sub')).mode & 0o777, 0o700);

    const rounds = 15;
    const before = refreshLines();
    const a = runChild([path, LATCHD_URL, String(rounds)]);
    const b = runChild([path, LATCHD_URL, String(rounds)]);
    await a.next('ready');
    await b.next('ready');
    a.child.stdin.end('go\n');
    b.child.stdin.end('go\n');
    assert.equal(await a.exited, 0);
    assert.equal(await b.exited, 0);
    const ra = await a.next('done');
    const rb = await b.next('done');
    for (const r of [ra, rb]) {
      assert.equal(r.email, addr);
      assert.deepEqual(r.signedOut, [], 'a process lost the session');
      assert.equal(r.tokens.length, rounds);
    }
    // Every refresh request rotated the session once: each gave a token no
    // other request gave. Without the lock both would spend the same refresh
    // token (Latch answers the second within its reuse grace with the same
    // successor), and there would be fewer tokens than requests.
    const posted = refreshLines() - before;
    const distinct = new Set([...ra.tokens, ...rb.tokens]);
    assert.ok(posted >= rounds, `only ${posted} refreshes for ${2 * rounds} refresh() calls`);
    assert.equal(distinct.size, posted, `${posted} refresh requests gave ${distinct.size} distinct tokens`);
    assert.ok(ra.adopted + rb.adopted > 0, 'no process adopted the other\'s rotation');
    assert.equal(existsSync(`${path}.lock`), false, 'the lock file was left behind');
    // This process adopts the latest tokens from the file too.
    await c.refresh();
    assert.equal((await c.me()).email, addr);

    // A lock left by a dead process is taken over once stale.
    writeFileSync(`${path}.lock`, 'dead');
    const old = new Date(Date.now() - 60_000);
    utimesSync(`${path}.lock`, old, old);
    const d = new LatchClient({ baseUrl: LATCHD_URL, storage: new FileStorage(path, { staleMs: 1_000 }) });
    await d.refresh();
    assert.equal((await d.me()).email, addr);
    assert.equal(existsSync(`${path}.lock`), false);

    // Logging out in one process clears the file: the other finds out at its next renewal.
    await d.logout();
    assert.equal(existsSync(path), false);
    await rejectsWith(c.refresh(), SessionEndedError, (e) => assert.equal(e.reason, 'revoked_elsewhere'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a session the storage cannot keep is not lost: the call throws the storage error, the client holds the session', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'latch-nofile-'));
  try {
    writeFileSync(join(dir, 'not-a-folder'), '');
    const c = new LatchClient({ baseUrl: proxy.url, storage: new FileStorage(join(dir, 'not-a-folder', 'tokens.json')) });
    const addr = email('unsaved');
    await assert.rejects(c.signUp(addr, PASSWORD), (e) => /** @type {any} */ (e).code === 'ENOTDIR');
    const held = await c.tokens();
    assert.ok(held && held.accessToken, 'the session Latch opened was dropped');
    assert.equal((await c.me()).email, addr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('FileStorage expands ~ to the home folder', () => {
  assert.equal(new FileStorage('~/.latch-tokens.json').path, join(homedir(), '.latch-tokens.json'));
  assert.equal(new FileStorage('/tmp/x.json').path, '/tmp/x.json');
});

test('latchd logged the refreshes', () => {
  assert.ok(refreshLines() > 0);
});

#!/usr/bin/env node
// idp-browser-test.mjs: provider sign-in in a real browser
// (make test-browser-idp; tools/test-browser-idp.sh starts latchd and the
// provider first).
//
// It serves a small test application on http://localhost:--listen that
// uses the TypeScript SDK as built (sdk/typescript/dist): its page "/"
// calls signInWithProvider('op'), which keeps a PKCE verifier in
// sessionStorage and sends the browser to Latch's GET
// /auth/providers/op/authorize; its "/callback" calls
// exchangeCodeForSession(), a cross-origin POST /auth/token (latchd runs
// with this origin in LATCH_CORS_ORIGINS), and shows the answer. Headless Chromium (Debian's, driven by playwright-core) clicks
// the sign-in button, fills oidc-provider's own login page and confirms
// its consent page, and this script checks that the browser came back to
// the application with a code, that the exchange gave an aal1 session of
// the provider's verified email with amr fed, that /auth/me answers for
// it, that a replay of the code is refused, and saves a screenshot.
//
// Then enterprise SSO (docs/sso.md): before the browser runs, the script
// signs up an owner, creates an organization, adds acme.example and
// verifies it through a DNS server of its own (dns2, from interop/, on
// --dns-port, which latchd's LATCH_DNS_RESOLVER names), starts a second
// oidc-provider (interop/oidc-provider.mjs) as the organization's own
// provider, registers Latch's client with it with the organization's
// callback, and PUTs it as the organization's connection. In a
// fresh browser the application's "/sso" page asks for an email and sends
// the browser to Latch's GET /auth/sso with its own PKCE challenge; the
// provider's login page signs in new@acme.example; "/sso-callback"
// exchanges the code and reads /auth/me and /organizations: the new,
// verified user is a member of the organization.
//
// Usage: node tools/idp-browser-test.mjs --latchd-url URL --listen PORT
//          --dns-port PORT
//          [--screenshot .ci/out/idp.png] [--chromium /usr/bin/chromium]
// Exits 0 when every check passes, 1 otherwise.

import { createServer } from 'node:http';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
// The DNS server package is pinned in interop/ (with oidc-provider).
const { default: dns2 } = await import(new URL('../interop/node_modules/dns2/index.mjs', import.meta.url));

const { values: opts } = parseArgs({
  options: {
    'latchd-url': { type: 'string' },
    listen: { type: 'string' },
    screenshot: { type: 'string', default: '.ci/out/idp.png' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    timeout: { type: 'string', default: '30000' },
    'dns-port': { type: 'string' },
  },
});

const say = (m) => console.log(`test-browser-idp: ${m}`);
const latch = opts['latchd-url'];
const port = Number(opts.listen);
const origin = `http://localhost:${port}`;

const sdkDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'sdk', 'typescript');

// The application's pages use the TypeScript SDK as built (sdk/typescript/dist),
// with openapi-fetch from the SDK's node_modules through an import map.
const page = (body, script) => `<!doctype html><html><head><meta charset="utf-8"><title>Test app</title>
<script type="importmap">{"imports":{"openapi-fetch":"/node_modules/openapi-fetch/dist/index.mjs"}}</script>
<style>body{font:15px system-ui;margin:2em}pre{background:#f4f4f4;padding:1em;white-space:pre-wrap;word-break:break-all}</style>
</head><body><h1>Test application</h1>${body}<script type="module">
import { LatchClient, ProviderSignInError } from '/sdk/index.js';
const latch = new LatchClient({ baseUrl: ${JSON.stringify(latch)}, storage: 'sessionStorage' });
window.latch = latch;
${script}
</script></body></html>`;

const signInScript = `document.getElementById('signin').onclick = () =>
  latch.signInWithProvider('op', { redirectTo: location.origin + '/callback' });
document.getElementById('signin').disabled = false;`;

const callbackScript = `const out = {};
try {
  const code = new URLSearchParams(location.search).get('code');
  out.code = !!code;
  const r = await latch.exchangeCodeForSession();
  out.user = r.tokens.user;
  out.aal = r.tokens.aal;
  out.mfa = r.mfa;
  const t = await latch.tokens();
  out.hasRefresh = !!(t && t.refreshToken);
  out.amr = JSON.parse(atob(t.accessToken.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).amr;
  out.me = (await latch.me()).email;
  // The code is spent: a replay (even with a verifier) is refused.
  const replay = await fetch(latch.baseUrl + '/auth/token', { method: 'POST',
    body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: 'x'.repeat(43) }) });
  out.replay = (await replay.json()).error;
} catch (e) {
  out.error = e instanceof ProviderSignInError ? e.code : String(e);
}
document.getElementById('result').textContent = JSON.stringify(out, null, 2);`;

// The SSO pages do by hand what an application does (the SDK has no SSO
// helper yet): a PKCE verifier in sessionStorage, GET /auth/sso, and the
// code's exchange at /auth/token.
const ssoPage = (body, script) => `<!doctype html><html><head><meta charset="utf-8"><title>Test app: SSO</title>
<style>body{font:15px system-ui;margin:2em}pre{background:#f4f4f4;padding:1em;white-space:pre-wrap;word-break:break-all}</style>
</head><body><h1>Test application: company sign-in</h1>${body}<script type="module">
const latch = ${JSON.stringify(latch)};
const b64url = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replaceAll('+', '-').replaceAll('/', '_').replaceAll('=', '');
${script}
</script></body></html>`;

const ssoScript = `document.getElementById('go').onclick = async () => {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  sessionStorage.setItem('sso_verifier', verifier);
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const q = new URLSearchParams({ email: document.getElementById('email').value, redirect_to: location.origin + '/sso-callback',
    code_challenge: challenge, code_challenge_method: 'S256' });
  location.assign(latch + '/auth/sso?' + q);
};
document.getElementById('go').disabled = false;`;

const ssoCallbackScript = `const out = {};
try {
  const q = new URLSearchParams(location.search);
  out.code = !!q.get('code');
  out.error = q.get('error') || undefined;
  const r = await fetch(latch + '/auth/token', { method: 'POST', body: new URLSearchParams({ grant_type: 'authorization_code',
    code: q.get('code'), code_verifier: sessionStorage.getItem('sso_verifier') }) });
  const t = await r.json();
  out.status = r.status;
  out.user = t.user;
  out.aal = t.aal;
  out.amr = JSON.parse(atob(t.access_token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).amr;
  const auth = { headers: { Authorization: 'Bearer ' + t.access_token } };
  out.me = (await (await fetch(latch + '/auth/me', auth)).json()).email;
  out.orgs = (await (await fetch(latch + '/organizations', auth)).json()).organizations.map((o) => ({ name: o.name, role: o.role }));
} catch (e) {
  out.exception = String(e);
}
document.getElementById('result').textContent = JSON.stringify(out, null, 2);`;

const app = createServer((req, res) => {
  const path = new URL(req.url, origin).pathname;
  res.setHeader('Cache-Control', 'no-store');
  const file = path.startsWith('/sdk/') ? join(sdkDir, 'dist', path.slice(5))
    : path === '/node_modules/openapi-fetch/dist/index.mjs' ? join(sdkDir, path) : null;
  if (file && !file.includes('..')) {
    try {
      const body = readFileSync(file);
      res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end('not found');
    }
    return;
  }
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  if (path === '/') {
    res.end(page('<button id="signin" disabled>Sign in with Test OP</button>', signInScript));
  } else if (path === '/callback') {
    res.end(page('<p>Signed in:</p><pre id="result">exchanging the code...</pre>', callbackScript));
  } else if (path === '/sso') {
    res.end(ssoPage('<label>Work email <input id="email" type="email"></label> <button id="go" disabled>Continue with SSO</button>', ssoScript));
  } else if (path === '/sso-callback') {
    res.end(ssoPage('<p>Signed in with SSO:</p><pre id="result">exchanging the code...</pre>', ssoCallbackScript));
  } else {
    res.writeHead(404);
    res.end('not found');
  }
});

// startDNS serves the TXT records of records (NXDOMAIN for other names)
// on 127.0.0.1:port over UDP, as latchd's LATCH_DNS_RESOLVER.
async function startDNS(port, records) {
  const { Packet } = dns2;
  const server = dns2.createServer({
    udp: true,
    handle: (request, send) => {
      const response = Packet.createResponseFromRequest(request);
      const [q] = request.questions;
      const values = records.get(q.name.toLowerCase().replace(/\.$/, ''));
      if (!values) {
        response.header.rcode = Packet.RCODE.NXDOMAIN;
      } else if (q.type === Packet.TYPE.TXT) {
        for (const data of values) response.answers.push({ name: q.name, type: Packet.TYPE.TXT, class: Packet.CLASS.IN, ttl: 0, data });
      }
      send(response);
    },
  });
  await server.listen({ udp: { port, address: '127.0.0.1' } });
  return server;
}

async function api(method, path, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(latch + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// startOrgProvider starts interop/oidc-provider.mjs, the organization's
// own provider, and registers Latch's client with the redirect URI; it
// stops when stop() closes its stdin.
async function startOrgProvider(secret, redirectURI) {
  const script = fileURLToPath(new URL('../interop/oidc-provider.mjs', import.meta.url));
  const child = spawn(process.execPath, [script], { cwd: dirname(script), stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await Promise.race([lines.next(),
      new Promise((_, no) => setTimeout(() => no(new Error('the organization\'s oidc-provider did not answer')), 10000))]);
    if (done) throw new Error('the organization\'s oidc-provider stopped');
    return JSON.parse(value);
  };
  const { issuer } = await next();
  child.stdin.write(`${JSON.stringify({ client_id: 'latch-sso', client_secret: secret, redirect_uris: [redirectURI] })}\n`);
  await next();
  return { issuer, stop: () => child.stdin.end() };
}

// setUpSSO makes the organization, verifies acme.example through the DNS
// server, starts the organization's provider and registers it as the
// organization's connection.
async function setUpSSO(records) {
  const owner = await api('POST', '/auth/signup', { email: 'owner@example.com', password: 'Latch browser test passphrase' });
  const token = owner.access_token;
  const org = await api('POST', '/organizations', { name: 'Acme' }, token);
  const dom = await api('POST', `/organizations/${org.id}/domains`, { domain: 'acme.example' }, token);
  records.set(dom.verification.record_name, [dom.verification.record_value]);
  const verified = await api('POST', `/organizations/${org.id}/domains/${dom.id}/verify`, undefined, token);
  if (!verified.verified) throw new Error(`the domain did not verify: ${JSON.stringify(verified)}`);
  say(`acme.example verified through the DNS server on port ${opts['dns-port']}`);
  const secret = 'sso-browser-secret-0123456789';
  const op = await startOrgProvider(secret, `${latch}/auth/providers/org-${org.id}/callback`);
  say(`the organization's oidc-provider is up at ${op.issuer}`);
  const conn = await api('PUT', `/organizations/${org.id}/sso`, { issuer: op.issuer, client_id: 'latch-sso', client_secret: secret }, token);
  if (!conn.client_secret_set || JSON.stringify(conn).includes(secret)) {
    op.stop();
    throw new Error(`the connection: ${JSON.stringify(conn)}`);
  }
  say(`the organization's connection is ${conn.provider_id}`);
  return { org, stop: op.stop };
}

// withBrowser runs fn with a tab of a fresh headless Chromium profile.
async function withBrowser(fn) {
  const profile = mkdtempSync(join(tmpdir(), 'latch-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: opts.chromium,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1000, height: 640 },
  });
  try {
    const tab = context.pages()[0] || (await context.newPage());
    return await fn(tab);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

// providerLogin fills oidc-provider's own development login page, then
// confirms its consent page.
async function providerLogin(tab, login, timeout) {
  await tab.waitForSelector('input[name=login]', { timeout });
  say(`the provider's login page: ${tab.url().split('?')[0]}`);
  await tab.fill('input[name=login]', login);
  await tab.fill('input[name=password]', 'any password');
  await Promise.all([tab.waitForLoadState('load'), tab.click('button[type=submit]')]);
  await tab.waitForSelector('button[type=submit]', { timeout });
  await tab.click('button[type=submit]');
}

async function main() {
  await new Promise((ok) => app.listen(port, 'localhost', ok));
  const problems = [];
  const timeout = Number(opts.timeout);
  const records = new Map();
  const dns = await startDNS(Number(opts['dns-port']), records);
  let sso;
  try {
    sso = await setUpSSO(records);
    const { org } = sso;
    await withBrowser(async (tab) => {
      const errors = [];
      tab.on('pageerror', (e) => errors.push(e.message));
      await tab.goto(origin + '/', { waitUntil: 'load', timeout });
      await tab.waitForSelector('#signin:not([disabled])', { timeout });
      await tab.click('#signin');
      await providerLogin(tab, 'ada@example.com', timeout);
      await tab.waitForURL(origin + '/callback?**', { timeout });
      await tab.waitForFunction(() => document.getElementById('result').textContent.startsWith('{'), null, { timeout });
      const out = await tab.evaluate(() => JSON.parse(document.getElementById('result').textContent));
      say(`results: ${JSON.stringify(out)}`);
      if (!out.code || out.error || !out.hasRefresh) problems.push(`the code exchange: ${JSON.stringify(out)}`);
      if (!out.user || out.user.email !== 'ada@example.com' || !out.user.email_verified) problems.push(`the user: ${JSON.stringify(out.user)}`);
      if (out.aal !== 'aal1' || JSON.stringify(out.amr) !== '["fed"]') problems.push(`the assurance: ${out.aal} ${JSON.stringify(out.amr)}`);
      if (out.me !== 'ada@example.com') problems.push(`/auth/me: ${out.me}`);
      if (out.replay !== 'invalid_grant') problems.push(`a replayed code: ${out.replay}`);
      problems.push(...errors.map((e) => `script error: ${e}`));
      mkdirSync(dirname(opts.screenshot), { recursive: true });
      await tab.screenshot({ path: opts.screenshot, fullPage: true });
      say(`screenshot: ${opts.screenshot}`);
    });
    // Enterprise SSO, in a browser without the provider's session of ada.
    await withBrowser(async (tab) => {
      const errors = [];
      tab.on('pageerror', (e) => errors.push(e.message));
      await tab.goto(origin + '/sso', { waitUntil: 'load', timeout });
      await tab.waitForSelector('#go:not([disabled])', { timeout });
      await tab.fill('#email', 'new@acme.example');
      await tab.click('#go');
      await providerLogin(tab, 'new@acme.example', timeout);
      await tab.waitForURL(origin + '/sso-callback?**', { timeout });
      await tab.waitForFunction(() => document.getElementById('result').textContent.startsWith('{'), null, { timeout });
      const out = await tab.evaluate(() => JSON.parse(document.getElementById('result').textContent));
      say(`SSO results: ${JSON.stringify(out)}`);
      if (!out.code || out.error || out.exception || out.status !== 200) problems.push(`the SSO code exchange: ${JSON.stringify(out)}`);
      if (!out.user || out.user.email !== 'new@acme.example' || !out.user.email_verified) problems.push(`the SSO user: ${JSON.stringify(out.user)}`);
      if (out.aal !== 'aal1' || JSON.stringify(out.amr) !== '["fed"]') problems.push(`the SSO assurance: ${out.aal} ${JSON.stringify(out.amr)}`);
      if (out.me !== 'new@acme.example') problems.push(`SSO /auth/me: ${out.me}`);
      if (JSON.stringify(out.orgs) !== JSON.stringify([{ name: org.name, role: 'member' }])) problems.push(`the SSO user's organizations: ${JSON.stringify(out.orgs)}`);
      problems.push(...errors.map((e) => `SSO script error: ${e}`));
      const shot = opts.screenshot.replace(/\.png$/, '') + '-sso.png';
      await tab.screenshot({ path: shot, fullPage: true });
      say(`screenshot: ${shot}`);
    });
  } finally {
    app.close();
    await dns.close();
    sso?.stop();
  }
  if (problems.length) {
    for (const p of problems) say(`FAIL ${p}`);
    process.exit(1);
  }
  say('provider sign-in and enterprise SSO passed in Chromium: app -> Latch -> oidc-provider login -> Latch -> app -> tokens');
}

main().catch((e) => {
  say(`FAIL ${e.stack || e}`);
  process.exit(1);
});

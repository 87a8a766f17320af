#!/usr/bin/env node
// idp-browser-test.mjs: provider sign-in in a real browser
// (make test-browser-idp; tools/test-browser-idp.sh starts latchd and the
// provider first).
//
// It serves a small test application on http://localhost:--listen: its
// page "/" makes a PKCE verifier (kept in sessionStorage) and sends the
// browser to Latch's GET /auth/providers/op/authorize; its "/callback"
// exchanges the returned code at POST /auth/token (a cross-origin fetch:
// latchd runs with this origin in LATCH_CORS_ORIGINS) and shows the
// answer. Headless Chromium (Debian's, driven by playwright-core) clicks
// the sign-in button, fills oidc-provider's own login page and confirms
// its consent page, and this script checks that the browser came back to
// the application with a code, that the exchange gave an aal1 session of
// the provider's verified email with amr fed, that /auth/me answers for
// it, that a replay of the code is refused, and saves a screenshot.
//
// Usage: node tools/idp-browser-test.mjs --latchd-url URL --listen PORT
//          [--screenshot .ci/out/idp.png] [--chromium /usr/bin/chromium]
// Exits 0 when every check passes, 1 otherwise.

import { createServer } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values: opts } = parseArgs({
  options: {
    'latchd-url': { type: 'string' },
    listen: { type: 'string' },
    screenshot: { type: 'string', default: '.ci/out/idp.png' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    timeout: { type: 'string', default: '30000' },
  },
});

const say = (m) => console.log(`test-browser-idp: ${m}`);
const latch = opts['latchd-url'];
const port = Number(opts.listen);
const origin = `http://localhost:${port}`;

const page = (body) => `<!doctype html><html><head><meta charset="utf-8"><title>Test app</title>
<style>body{font:15px system-ui;margin:2em}pre{background:#f4f4f4;padding:1em;white-space:pre-wrap;word-break:break-all}</style>
</head><body><h1>Test application</h1>${body}<script>
const LATCH = ${JSON.stringify(latch)};
const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
async function signIn() {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  sessionStorage.setItem('pkce', verifier);
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const q = new URLSearchParams({ redirect_to: location.origin + '/callback', code_challenge: challenge, code_challenge_method: 'S256' });
  location.assign(LATCH + '/auth/providers/op/authorize?' + q);
}
async function exchange(code, verifier) {
  const r = await fetch(LATCH + '/auth/token', { method: 'POST',
    body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier }) });
  return { status: r.status, body: await r.json() };
}
async function finish() {
  const q = new URLSearchParams(location.search);
  const out = { code: !!q.get('code'), error: q.get('error') };
  if (q.get('code')) {
    const verifier = sessionStorage.getItem('pkce');
    const first = await exchange(q.get('code'), verifier);
    out.status = first.status;
    out.user = first.body.user;
    out.aal = first.body.aal;
    out.hasRefresh = !!first.body.refresh_token;
    if (first.body.access_token) {
      const claims = JSON.parse(atob(first.body.access_token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
      out.amr = claims.amr;
      const me = await fetch(LATCH + '/auth/me', { headers: { Authorization: 'Bearer ' + first.body.access_token } });
      out.me = (await me.json()).email;
    }
    out.replay = (await exchange(q.get('code'), verifier)).body.error;
  }
  document.getElementById('result').textContent = JSON.stringify(out, null, 2);
  return out;
}
if (location.pathname === '/callback') finish();
</script></body></html>`;

const app = createServer((req, res) => {
  const path = new URL(req.url, origin).pathname;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  if (path === '/') {
    res.end(page('<button id="signin" onclick="signIn()">Sign in with Test OP</button>'));
  } else if (path === '/callback') {
    res.end(page('<p>Signed in:</p><pre id="result">exchanging the code...</pre>'));
  } else {
    res.writeHead(404);
    res.end('not found');
  }
});

async function main() {
  await new Promise((ok) => app.listen(port, 'localhost', ok));
  const problems = [];
  const profile = mkdtempSync(join(tmpdir(), 'latch-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: opts.chromium,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1000, height: 640 },
  });
  const timeout = Number(opts.timeout);
  try {
    const tab = context.pages()[0] || (await context.newPage());
    const errors = [];
    tab.on('pageerror', (e) => errors.push(e.message));
    await tab.goto(origin + '/', { waitUntil: 'load', timeout });
    await tab.click('#signin');
    // oidc-provider's own development login page, then its consent page.
    await tab.waitForSelector('input[name=login]', { timeout });
    say(`the provider's login page: ${tab.url().split('?')[0]}`);
    await tab.fill('input[name=login]', 'ada@example.com');
    await tab.fill('input[name=password]', 'any password');
    await Promise.all([tab.waitForLoadState('load'), tab.click('button[type=submit]')]);
    await tab.waitForSelector('button[type=submit]', { timeout });
    await tab.click('button[type=submit]');
    await tab.waitForURL(origin + '/callback?**', { timeout });
    await tab.waitForFunction(() => document.getElementById('result').textContent.startsWith('{'), null, { timeout });
    const out = await tab.evaluate(() => JSON.parse(document.getElementById('result').textContent));
    say(`results: ${JSON.stringify(out)}`);
    if (!out.code || out.status !== 200 || !out.hasRefresh) problems.push(`the code exchange: ${JSON.stringify(out)}`);
    if (!out.user || out.user.email !== 'ada@example.com' || !out.user.email_verified) problems.push(`the user: ${JSON.stringify(out.user)}`);
    if (out.aal !== 'aal1' || JSON.stringify(out.amr) !== '["fed"]') problems.push(`the assurance: ${out.aal} ${JSON.stringify(out.amr)}`);
    if (out.me !== 'ada@example.com') problems.push(`/auth/me: ${out.me}`);
    if (out.replay !== 'invalid_grant') problems.push(`a replayed code: ${out.replay}`);
    problems.push(...errors.map((e) => `script error: ${e}`));
    mkdirSync(dirname(opts.screenshot), { recursive: true });
    await tab.screenshot({ path: opts.screenshot, fullPage: true });
    say(`screenshot: ${opts.screenshot}`);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    app.close();
  }
  if (problems.length) {
    for (const p of problems) say(`FAIL ${p}`);
    process.exit(1);
  }
  say('provider sign-in passed in Chromium: app -> Latch -> oidc-provider login -> Latch -> app -> tokens');
}

main().catch((e) => {
  say(`FAIL ${e.stack || e}`);
  process.exit(1);
});

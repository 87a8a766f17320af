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
// Usage: node tools/idp-browser-test.mjs --latchd-url URL --listen PORT
//          [--screenshot .ci/out/idp.png] [--chromium /usr/bin/chromium]
// Exits 0 when every check passes, 1 otherwise.

import { createServer } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
    await tab.waitForSelector('#signin:not([disabled])', { timeout });
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
    if (!out.code || out.error || !out.hasRefresh) problems.push(`the code exchange: ${JSON.stringify(out)}`);
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

#!/usr/bin/env node
// mfa-browser-test.mjs: passkeys in a real browser (make test-browser-mfa).
//
// WebAuthn runs only in a secure context and for an RP id that is a domain,
// so the test page and Latch's API must share an origin on http://localhost.
// This script serves tools/mfa-test-page.html at / on --listen (a localhost
// port) and proxies every other request to latchd at --latchd-url; latchd
// runs with LATCH_WEBAUTHN_RP_ID=localhost and LATCH_WEBAUTHN_ORIGINS set to
// that origin (tools/test-browser-mfa.sh does both).
//
// Headless Chromium (Debian's, driven by playwright-core) gets the DevTools
// virtual authenticator over a CDP session (WebAuthn.enable, then
// WebAuthn.addVirtualAuthenticator: CTAP2, internal transport, resident
// keys, user verification, the user verified). The page's runFlow() signs
// up, registers a passkey, signs out, signs in with the passkey alone, then
// logs in with the password and uses the passkey as the second factor; this
// script checks what each step returned and that the authenticator holds one
// resident credential whose sign count moved, and saves a screenshot.
//
// Usage: node tools/mfa-browser-test.mjs --latchd-url URL --listen PORT
//          [--screenshot .ci/out/mfa.png] [--chromium /usr/bin/chromium]
// Exits 0 when every check passes, 1 otherwise.

import { createServer, request as httpRequest } from 'node:http';
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
    screenshot: { type: 'string', default: '.ci/out/mfa.png' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    timeout: { type: 'string', default: '30000' },
  },
});

const say = (m) => console.log(`test-browser-mfa: ${m}`);
const page = readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'mfa-test-page.html'));
const upstream = new URL(opts['latchd-url']);

// The page at /, everything else to latchd, as one origin.
const proxy = createServer((req, res) => {
  if (req.method === 'GET' && (req.url === '/' || req.url === '/index.html')) {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(page);
    return;
  }
  const up = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url,
    headers: { ...req.headers, host: upstream.host } }, (r) => {
    res.writeHead(r.statusCode, r.headers);
    r.pipe(res);
  });
  up.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
  req.pipe(up);
});

async function main() {
  const port = Number(opts.listen);
  await new Promise((ok) => proxy.listen(port, 'localhost', ok));
  const origin = `http://localhost:${port}`;
  const problems = [];
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
    const errors = [];
    tab.on('pageerror', (e) => errors.push(e.message));
    const cdp = await context.newCDPSession(tab);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
        isUserVerified: true, automaticPresenceSimulation: true },
    });
    await tab.goto(origin + '/', { waitUntil: 'load', timeout: Number(opts.timeout) });
    let out;
    try {
      out = await tab.evaluate(() => window.runFlow());
    } catch (e) {
      problems.push(`the flow failed: ${e.message}`);
    }
    if (out) {
      say(`results: ${JSON.stringify(out)}`);
      const amr = (x) => (x.amr || []).join(',');
      if (out.registered.aal !== 'aal2' || !out.registered.sameSession || out.registered.recoveryCodes !== 10) {
        problems.push(`registration: ${JSON.stringify(out.registered)}`);
      }
      if (!out.passkeyLogin.sameUser || out.passkeyLogin.aal !== 'aal2' || !/^(hwk|swk),mfa$/.test(amr(out.passkeyLogin))) {
        problems.push(`passkey sign-in: ${JSON.stringify(out.passkeyLogin)}`);
      }
      if (out.passwordLogin.aal !== 'aal1' || !out.passwordLogin.pending.includes('webauthn')) {
        problems.push(`password login: ${JSON.stringify(out.passwordLogin)}`);
      }
      if (out.secondFactor.aal !== 'aal2' || !out.secondFactor.sameSession || !/^pwd,(hwk|swk),mfa$/.test(amr(out.secondFactor))) {
        problems.push(`second factor: ${JSON.stringify(out.secondFactor)}`);
      }
    }
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    if (credentials.length !== 1 || !credentials[0].isResidentCredential || credentials[0].signCount < 2) {
      problems.push(`the authenticator holds ${JSON.stringify(credentials.map((c) => ({ resident: c.isResidentCredential, signCount: c.signCount })))}, want one resident credential used twice`);
    }
    problems.push(...errors.map((e) => `script error: ${e}`));
    mkdirSync(dirname(opts.screenshot), { recursive: true });
    await tab.screenshot({ path: opts.screenshot, fullPage: true });
    say(`screenshot: ${opts.screenshot}`);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    proxy.close();
  }
  if (problems.length) {
    for (const p of problems) say(`FAIL ${p}`);
    process.exit(1);
  }
  say('passkey registration, passwordless sign-in and second factor passed in Chromium');
}

main().catch((e) => {
  say(`FAIL ${e.stack || e}`);
  process.exit(1);
});

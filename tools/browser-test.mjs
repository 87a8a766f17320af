#!/usr/bin/env node
// browser-test.mjs opens the API reference that latchd serves at /docs in
// headless Chromium (Debian's, driven by playwright-core, which downloads no
// browser) and checks what a reader sees: the page renders, every operation of
// openapi.yaml shows up with its summary, the page makes no request to any
// other origin (not even an image), /favicon.ico is an icon, and no script
// error occurs. It saves a screenshot.
//
// It then checks the pages that mailed links open: /reset-password sets a
// new password with a real reset link (read from latchd's log, which must
// show links: LATCH_MAIL_LOG_LINKS=true), drops the token from the address
// bar, and says so; /verify-email with a dead link says the link is
// invalid; /accept-invitation shows how to accept. None of them loads
// anything from another origin or breaks its Content-Security-Policy.
//
// Redoc renders a tag's operations when the reader opens the tag, so the check
// opens each tag (/docs#/<tag>) and waits for the summaries of its operations.
//
// Usage: node tools/browser-test.mjs --base-url URL [--spec openapi.yaml]
//          [--screenshot .ci/out/docs.png] [--chromium /usr/bin/chromium]
//          [--latchd-log FILE]
// Exits 0 when every check passes, 1 otherwise.

import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import YAML from 'yaml';

const { values: opts } = parseArgs({
  options: {
    'base-url': { type: 'string' },
    spec: { type: 'string', default: 'openapi.yaml' },
    screenshot: { type: 'string', default: '.ci/out/docs.png' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    timeout: { type: 'string', default: '20000' },
    'latchd-log': { type: 'string' },
  },
});

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function say(message) {
  console.log(`test-browser: ${message}`);
}

// operations lists the spec's operations, grouped by their first tag in the
// order of the spec's tag list.
function operations(file) {
  const spec = YAML.parse(readFileSync(file, 'utf8'));
  const byTag = new Map((spec.tags || []).map((t) => [t.name, []]));
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const tag = (op.tags && op.tags[0]) || '';
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push({ method: method.toUpperCase(), path, operationId: op.operationId, summary: op.summary });
    }
  }
  return { title: spec.info.title, byTag };
}

// api calls Latch from Node, outside the browser.
async function api(base, path, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`${base}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

// resetLink waits for latchd to log the reset mail of email and returns its
// token.
async function resetToken(log, since, timeout) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const text = readFileSync(log, 'utf8').slice(since);
    const m = text.match(/reset-password#token=([A-Za-z0-9_-]{43})/);
    if (m) return m[1];
    await new Promise((r) => setTimeout(r, 200));
  }
  return null;
}

// checkPages drives the pages of mailed links as a person would.
async function checkPages(page, base, timeout, problems, pageErrors) {
  const csp = [];
  page.on('console', (msg) => {
    if (/Content Security Policy|Refused to/.test(msg.text())) csp.push(msg.text());
  });
  const status = async () => (await page.locator('#status').textContent()) || '';

  // Reset: a real link from the log, a new password, then a login with it.
  const log = opts['latchd-log'];
  if (!log) {
    problems.push('--latchd-log is needed to check /reset-password with a real link');
  } else {
    const email = `page-${Date.now()}@example.com`;
    const su = await api(base, '/auth/signup', { email, password: 'an old passphrase' });
    if (su.status !== 201) problems.push(`signup for the reset page: ${su.status}`);
    const since = readFileSync(log, 'utf8').length;
    await api(base, '/auth/password/forgot', { email });
    const token = await resetToken(log, since, timeout);
    if (!token) {
      problems.push('no reset link in the latchd log (is LATCH_MAIL_LOG_LINKS=true?)');
    } else {
      await page.goto(`${base}/reset-password#token=${token}`, { waitUntil: 'load', timeout });
      if (page.url().includes(token)) problems.push('/reset-password left the token in the address bar');
      await page.getByLabel('New password', { exact: true }).fill('a brand new passphrase');
      await page.getByLabel('Repeat the new password').fill('a brand new passphrase');
      await page.getByRole('button', { name: 'Set the new password' }).click();
      await page.waitForFunction(() => /password is changed|Not done/.test(document.getElementById('status').textContent), null, { timeout })
        .catch(() => {});
      const said = await status();
      if (!said.includes('password is changed')) problems.push(`/reset-password said "${said}"`);
      const login = await api(base, '/auth/login', { email, password: 'a brand new passphrase' });
      if (login.status !== 200) problems.push(`login with the password set on /reset-password: ${login.status}`);
      else say('/reset-password set a new password with a mailed link');
    }
  }

  // Verify with a dead link: the page explains.
  await page.goto(`${base}/verify-email#token=${'x'.repeat(43)}`, { waitUntil: 'load', timeout });
  await page.getByRole('button', { name: 'Verify my email address' }).click();
  await page.waitForFunction(() => /Not done|verified/.test(document.getElementById('status').textContent), null, { timeout })
    .catch(() => {});
  const said = await status();
  if (!said.includes('invalid, used or expired')) problems.push(`/verify-email with a dead link said "${said}"`);
  else say('/verify-email explains a dead link');

  // Invitation: the token and how to accept it.
  await page.goto(`${base}/accept-invitation#token=abc`, { waitUntil: 'load', timeout });
  const shown = (await page.locator('#token').textContent()) || '';
  if (!shown.includes('"token":"abc"')) problems.push(`/accept-invitation shows "${shown}"`);
  else say('/accept-invitation shows how to accept');

  for (const m of csp) problems.push(`Content-Security-Policy violation: ${m}`);
  void pageErrors;
}

async function main() {
  if (!opts['base-url']) {
    console.error('usage: node tools/browser-test.mjs --base-url URL [--spec FILE] [--screenshot FILE] [--chromium PATH]');
    return 2;
  }
  const base = opts['base-url'].replace(/\/+$/, '');
  const docsUrl = `${base}/docs`;
  const origin = new URL(base).origin;
  const timeout = Number(opts.timeout);
  const { title, byTag } = operations(opts.spec);
  const total = [...byTag.values()].reduce((n, ops) => n + ops.length, 0);
  const problems = [];

  const profile = mkdtempSync(join(tmpdir(), 'latch-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: opts.chromium,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 900 },
  });
  try {
    const page = context.pages()[0] || (await context.newPage());
    const pageErrors = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));

    // The page must be self-contained: requests to other origins are blocked
    // (there is no network here anyway) and recorded; images are tolerated
    // (Redoc's "API docs by" badge), code, styles and fonts are not.
    const external = [];
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(origin) || url.startsWith('data:') || url.startsWith('blob:')) {
        return route.continue();
      }
      external.push({ url, type: route.request().resourceType() });
      return route.abort('blockedbyclient');
    });

    const response = await page.goto(docsUrl, { waitUntil: 'load', timeout });
    const type = response ? response.headers()['content-type'] || '' : '';
    if (!response || response.status() !== 200 || !type.startsWith('text/html')) {
      problems.push(`GET /docs answered ${response ? response.status() : 'nothing'} (${type || 'no content type'}), not a 200 text/html page`);
    } else {
      await page.waitForFunction((t) => document.body && document.body.innerText.includes(t), title, { timeout })
        .catch(() => problems.push(`the page never showed the API title "${title}"`));
      for (const [tag, ops] of byTag) {
        if (ops.length === 0) continue;
        await page.goto(`${docsUrl}#/${encodeURIComponent(tag)}`, { waitUntil: 'load', timeout });
        const summaries = ops.map((op) => op.summary || op.operationId);
        await page.waitForFunction((want) => {
          const text = document.body.innerText;
          return want.every((s) => text.includes(s));
        }, summaries, { timeout }).catch(() => {});
        const text = await page.evaluate(() => document.body.innerText);
        const missing = ops.filter((op) => !text.includes(op.summary || op.operationId));
        for (const op of missing) {
          problems.push(`${op.operationId} (${op.method} ${op.path}, tag ${tag}): summary "${op.summary}" not rendered`);
        }
        say(`${tag}: ${ops.length - missing.length}/${ops.length} operations rendered`);
      }

      // The screenshot shows the auth tag: its operations in the menu and the page.
      const shown = byTag.has('auth') ? 'auth' : [...byTag.keys()][0];
      await page.goto(`${docsUrl}#/${encodeURIComponent(shown)}`, { waitUntil: 'load', timeout });
      await page.waitForLoadState('networkidle', { timeout: 5000 }).catch(() => {});
      await page.waitForTimeout(500);
      mkdirSync(dirname(opts.screenshot), { recursive: true });
      await page.screenshot({ path: opts.screenshot });
      say(`screenshot of /docs#/${shown} saved to ${opts.screenshot}`);
    }

    for (const message of pageErrors) {
      problems.push(`script error on the page: ${message}`);
    }
    for (const { url, type: kind } of external) {
      problems.push(`the page is not self-contained: it requested ${kind} ${url}`);
    }
    external.length = 0;

    const icon = await page.request.get(`${base}/favicon.ico`);
    const iconBody = await icon.body();
    if (icon.status() !== 200 || icon.headers()['content-type'] !== 'image/x-icon' || iconBody.readUInt16LE(2) !== 1) {
      problems.push(`/favicon.ico is not an icon: ${icon.status()} ${icon.headers()['content-type']}`);
    }

    await checkPages(page, base, timeout, problems, pageErrors);
    for (const { url, type: kind } of external) {
      problems.push(`a page is not self-contained: it requested ${kind} ${url}`);
    }
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }

  if (problems.length > 0) {
    for (const p of problems) {
      console.error(`test-browser: FAIL ${p}`);
    }
    console.error(`test-browser: ${problems.length} problem(s) with ${docsUrl}`);
    return 1;
  }
  say(`all ${total} operations of ${opts.spec} are rendered at ${docsUrl}`);
  return 0;
}

main().then((code) => process.exit(code), (err) => {
  console.error(`test-browser: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});

#!/usr/bin/env node
// multitab.mjs: five tabs of one origin share one Latch session in headless
// Chromium (Debian's, driven by playwright-core; no browser is downloaded).
//
// A small static server (this process) serves a page that loads the built SDK
// (dist/) with localStorage. The first tab signs up; four more open and find
// the session in localStorage. For DURATION seconds every tab calls
// GET /auth/me in a loop. Pass: zero signedOut events, zero invalid_grant
// answers, every call 200, and the refreshes latchd logged in that time
// (`method=POST path=/auth/refresh`) within 20% of one per access-token
// lifetime. With --no-locks the page deletes navigator.locks before the SDK
// loads, so the storage lease is what serialises the refreshes.
//
// Usage: node test/multitab.mjs --latchd URL --log FILE --port N [--duration 180]
//          [--ttl 10] [--no-locks] [--screenshot FILE] [--out FILE] [--chromium PATH]
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values: opts } = parseArgs({
  options: {
    latchd: { type: 'string' },
    log: { type: 'string' },
    port: { type: 'string' },
    duration: { type: 'string', default: '180' },
    ttl: { type: 'string', default: '10' },
    tabs: { type: 'string', default: '5' },
    'no-locks': { type: 'boolean', default: false },
    screenshot: { type: 'string', default: '' },
    out: { type: 'string', default: '' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
});
const say = (m) => console.log(`multitab: ${m}`);
if (!opts.latchd || !opts.log || !opts.port) {
  console.error('usage: node test/multitab.mjs --latchd URL --log FILE --port N [--duration S] [--no-locks]');
  process.exit(2);
}
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const duration = Number(opts.duration) * 1000;
const ttl = Number(opts.ttl);
const tabs = Number(opts.tabs);
const mode = opts['no-locks'] ? 'storage-lease' : 'web-locks';

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Latch multi-tab</title>
<script type="importmap">{"imports":{"openapi-fetch":"/node_modules/openapi-fetch/dist/index.mjs"}}</script>
${opts['no-locks'] ? '<script>delete Navigator.prototype.locks;</script>' : ''}
<style>body{font:14px system-ui;margin:2em}td{padding:2px 10px}</style></head>
<body><h1>Latch SDK, one session in ${tabs} tabs</h1><table id="t"></table>
<script type="module">
import { LatchClient } from '/dist/index.js';
const latch = new LatchClient({ baseUrl: ${JSON.stringify(opts.latchd)}, storage: 'localStorage', refresh: { fraction: 0.05 } });
const s = window.stats = { lock: latch.lockKind, calls: 0, ok: 0, statuses: {}, errors: [], signedOut: [], refreshed: 0, adopted: 0, invalidGrant: 0, running: false };
latch.on('signedOut', (e) => s.signedOut.push(e.reason));
latch.on('tokenRefreshed', (e) => (e.adopted ? s.adopted++ : s.refreshed++));
window.signup = async (email, password) => { await latch.signUp(email, password); };
window.startLoop = async (ms) => {
  s.running = true;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    s.calls++;
    try {
      const r = await latch.api.GET('/auth/me');
      s.statuses[r.response.status] = (s.statuses[r.response.status] || 0) + 1;
      if (r.response.status === 200) s.ok++;
      else if (r.error && r.error.error === 'invalid_grant') s.invalidGrant++;
    } catch (e) {
      s.errors.push(String(e && e.message || e));
      if (e && (e.code === 'invalid_grant' || (e.cause && e.cause.code === 'invalid_grant'))) s.invalidGrant++;
    }
    await new Promise((r) => setTimeout(r, 200 + Math.random() * 100));
  }
  s.running = false;
};
setInterval(() => {
  const rows = [['lock', s.lock], ['calls', s.calls], ['200', s.ok], ['errors', s.errors.length], ['signedOut', s.signedOut.length],
    ['refreshed here', s.refreshed], ['adopted from other tabs', s.adopted], ['invalid_grant', s.invalidGrant]];
  document.getElementById('t').innerHTML = rows.map(([k, v]) => '<tr><td>' + k + '</td><td>' + v + '</td></tr>').join('');
}, 500);
</script></body></html>`;

const TYPES = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.map': 'application/json' };
const server = http.createServer((req, res) => {
  const path = new URL(req.url, 'http://x').pathname;
  if (path === '/') {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    return res.end(PAGE);
  }
  if (!/^\/(dist|node_modules\/openapi-fetch\/dist)\/[\w.-]+$/.test(path)) {
    res.writeHead(404);
    return res.end();
  }
  try {
    const body = readFileSync(join(ROOT, path));
    res.writeHead(200, { 'Content-Type': TYPES[extname(path)] || 'application/octet-stream' });
    res.end(body);
  } catch {
    res.writeHead(404);
    res.end();
  }
});
await new Promise((r) => server.listen(Number(opts.port), '127.0.0.1', () => r(undefined)));
const origin = `http://127.0.0.1:${opts.port}`;

function refreshes() {
  return readFileSync(opts.log, 'utf8').split('\n').filter((l) => l.includes('method=POST path=/auth/refresh ')).map((l) => /status=(\d+)/.exec(l)?.[1]);
}

const profile = mkdtempSync(join(tmpdir(), 'latch-multitab-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: opts.chromium,
  headless: true,
  viewport: { width: 900, height: 500 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
    '--disable-backgrounding-occluded-windows'],
});
const problems = [];
let result;
try {
  const pageErrors = [];
  const pages = [];
  for (let i = 0; i < tabs; i++) {
    const p = i === 0 ? context.pages()[0] || (await context.newPage()) : await context.newPage();
    p.on('pageerror', (e) => pageErrors.push(e.message));
    await p.goto(origin + '/', { waitUntil: 'load' });
    await p.waitForFunction(() => window.stats !== undefined);
    if (i === 0) await p.evaluate(([e, pw]) => window.signup(e, pw), [`tabs-${Date.now()}@example.com`, 'correct horse battery staple']);
    pages.push(p);
  }
  const locks = await Promise.all(pages.map((p) => p.evaluate(() => window.stats.lock)));
  if (locks.some((l) => l !== mode)) problems.push(`the tabs used ${locks.join(', ')}, not ${mode}`);
  const before = refreshes().length;
  say(`${tabs} tabs (${mode}) call GET /auth/me for ${duration / 1000} s`);
  await Promise.all(pages.map((p) => p.evaluate((ms) => window.startLoop(ms), duration)));
  const seen = refreshes().slice(before);
  const stats = await Promise.all(pages.map((p) => p.evaluate(() => window.stats)));
  if (opts.screenshot) {
    mkdirSync(dirname(opts.screenshot), { recursive: true });
    await pages[0].waitForTimeout(600);
    await pages[0].screenshot({ path: opts.screenshot });
  }
  const sum = (f) => stats.reduce((n, s) => n + f(s), 0);
  // One refresh per token period: a token lives ttl less the fraction of a
  // second that the JWT's whole-second exp drops (half a second on
  // average), and the SDK renews it a margin before it expires (the page's
  // fraction, 5%). A refresh per tab would be about five times this.
  const period = ttl - 0.5 - ttl * 0.05;
  const expected = Math.round((duration / 1000 / period) * 10) / 10;
  result = {
    mode, tabs, seconds: duration / 1000, ttl,
    calls: sum((s) => s.calls), ok: sum((s) => s.ok), errors: sum((s) => s.errors.length),
    signedOut: sum((s) => s.signedOut.length), invalidGrant: sum((s) => s.invalidGrant),
    refreshedInTabs: sum((s) => s.refreshed), adoptedInTabs: sum((s) => s.adopted),
    serverRefreshes: seen.length, serverRefreshesNot200: seen.filter((st) => st !== '200').length,
    expectedRefreshes: expected, ratio: Number((seen.length / expected).toFixed(3)),
    firstErrors: stats.flatMap((s) => s.errors).slice(0, 5), pageErrors,
  };
  say(JSON.stringify(result));
  if (result.signedOut !== 0) problems.push(`${result.signedOut} signedOut events`);
  if (result.invalidGrant !== 0) problems.push(`${result.invalidGrant} invalid_grant answers`);
  if (result.ok !== result.calls || result.errors !== 0) problems.push(`${result.calls - result.ok} of ${result.calls} calls were not 200`);
  if (result.serverRefreshesNot200 !== 0) problems.push(`${result.serverRefreshesNot200} refreshes were not answered 200`);
  if (Math.abs(result.ratio - 1) > 0.2) problems.push(`latchd saw ${seen.length} refreshes, not within 20% of ${expected}`);
  if (result.calls < tabs * 10) problems.push(`only ${result.calls} calls`);
  if (pageErrors.length) problems.push(`script errors: ${pageErrors.join('; ')}`);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
  server.close();
}
if (opts.out && result) appendFileSync(opts.out, JSON.stringify({ ...result, pass: problems.length === 0, problems }) + '\n');
for (const p of problems) console.error(`multitab: FAIL ${p}`);
say(problems.length ? `${problems.length} problem(s)` : `pass (${mode})`);
process.exit(problems.length ? 1 : 0);

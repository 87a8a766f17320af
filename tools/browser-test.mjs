#!/usr/bin/env node
// browser-test.mjs opens the API reference that latchd serves at /docs in
// headless Chromium (Debian's, driven by playwright-core, which downloads no
// browser) and checks what a reader sees: the page renders, every operation of
// openapi.yaml shows up with its summary, the page loads no script, style or
// font from another origin, and no script error occurs. It saves a screenshot.
//
// Redoc renders a tag's operations when the reader opens the tag, so the check
// opens each tag (/docs#/<tag>) and waits for the summaries of its operations.
//
// Usage: node tools/browser-test.mjs --base-url URL [--spec openapi.yaml]
//          [--screenshot .ci/out/docs.png] [--chromium /usr/bin/chromium]
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
      if (kind === 'image') {
        say(`note: blocked an image from another origin: ${url}`);
      } else {
        problems.push(`the page is not self-contained: it requested ${kind} ${url}`);
      }
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

#!/usr/bin/env node
// docs-offline.mjs makes the API reference that Redocly built truly
// self-contained: Redoc's "API docs by" badge loads Redocly's logo from
// cdn.redoc.ly, the one request the page makes to another origin. The logo
// URLs become an empty data: URL (Redoc hides an image that fails to load;
// the badge's text and link stay), and the page names Latch's own
// /favicon.ico. Fails when the logo URLs are missing, so that a Redocly
// upgrade that moves them is noticed.
//
// Usage: node tools/docs-offline.mjs FILE.html (rewritten in place)

import { readFileSync, writeFileSync } from 'node:fs';

const file = process.argv[2];
if (!file) {
  console.error('usage: node tools/docs-offline.mjs FILE.html');
  process.exit(2);
}
let html = readFileSync(file, 'utf8');
const logos = ['https://cdn.redoc.ly/redoc/logo-mini-full.svg', 'https://cdn.redoc.ly/redoc/logo-mini.svg'];
for (const url of logos) {
  if (!html.includes(url)) {
    console.error(`docs-offline: ${url} is not in ${file}: has Redocly changed its badge? Check /docs for requests to other origins.`);
    process.exit(1);
  }
  html = html.replaceAll(url, 'data:,');
}
if (!html.includes('rel="icon"')) {
  html = html.replace('<head>', '<head>\n  <link rel="icon" href="favicon.ico">');
}
writeFileSync(file, html);

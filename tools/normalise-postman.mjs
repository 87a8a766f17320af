#!/usr/bin/env node
// normalise-postman.mjs makes a Postman collection (or environment) that
// portman wrote byte-identical from one run to the next, so that a generated
// file only changes when openapi.yaml or the Postman config changes.
//
// Portman gives every collection, folder, request and script a random UUID and
// leaves a stray top-level "_" key behind. This replaces each UUID-valued id by
// a UUID derived from the SHA-256 of its JSON path (items are named by their
// "name", scripts by their "listen", so an id survives the insertion of an
// unrelated request) and drops the "_" key. It sorts nothing: the order of
// folders, requests and scripts is the flow order and stays as it is.
//
// Usage: node tools/normalise-postman.mjs IN.json [OUT.json]  (OUT defaults to IN)

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ID_KEYS = new Set(['id', '_postman_id', 'postman_id']);

// stableId returns a UUID-shaped id (version 5 layout, RFC 9562) derived from
// path, so that Postman accepts it and the same path always gets the same id.
export function stableId(path) {
  const h = createHash('sha256').update(`latch:${path}`).digest('hex');
  const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

// label names an array element in a JSON path: by its name (items), its
// listen (events) or its key (variables, headers), else by its index.
function label(element, index) {
  if (element && typeof element === 'object' && !Array.isArray(element)) {
    for (const k of ['name', 'listen', 'key']) {
      if (typeof element[k] === 'string') {
        return `[${JSON.stringify(element[k])}]`;
      }
    }
  }
  return `[${index}]`;
}

function walk(node, path) {
  if (Array.isArray(node)) {
    const seen = new Map();
    node.forEach((element, index) => {
      let segment = label(element, index);
      const n = seen.get(segment) || 0;
      seen.set(segment, n + 1);
      if (n > 0) {
        segment += `#${n}`; // siblings with the same name keep distinct ids
      }
      walk(element, path + segment);
    });
    return;
  }
  if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (ID_KEYS.has(key) && typeof value === 'string' && UUID.test(value)) {
        node[key] = stableId(`${path}.${key}`);
      } else {
        walk(value, `${path}.${key}`);
      }
    }
  }
}

// normalise returns a normalised deep copy of a collection or environment.
export function normalise(doc) {
  const out = structuredClone(doc);
  delete out._;
  walk(out, '$');
  return out;
}

// serialise is the one on-disk form: two-space JSON and a final newline.
export function serialise(doc) {
  return `${JSON.stringify(doc, null, 2)}\n`;
}

if (import.meta.url === pathToFileURL(process.argv[1] || '').href) {
  const [input, output = input] = process.argv.slice(2);
  if (!input) {
    console.error('usage: node tools/normalise-postman.mjs IN.json [OUT.json]');
    process.exit(2);
  }
  writeFileSync(output, serialise(normalise(JSON.parse(readFileSync(input, 'utf8')))));
}

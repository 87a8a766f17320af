#!/usr/bin/env node
// generate-postman.mjs writes the Postman files in postman/ from openapi.yaml:
//
//   latch.postman_collection.json   the collection for people: requests in
//                                   flow order, variable captures and the token
//                                   refresh, no tests
//   latch.postman_contract.json     the same requests with contract tests on
//                                   every response, plus variation tests
//                                   (wrong password, missing credentials,
//                                   malformed bodies); CI runs it with newman
//   latch.postman_environment.json  base_url, the account and empty token slots
//
// Portman (configured by postman/portman-config.json, postman/postman-config.json
// and the scripts in postman/scripts/) does the conversion. It runs in a
// scratch directory, because it writes ./tmp there and reads ./.env, and with
// no PORTMAN_* variables in its environment, because it copies those into the
// collection. Its output then gets three fixed touches:
//   1. {{baseUrl}} (from `servers: - url: /`) becomes {{base_url}}, the
//      variable the environment and test-postman set;
//   2. logout moves to a last folder of its own, "auth: logout": it ends the
//      session, so it must run after everything else, and portman can order
//      requests only within their folder and always appends its
//      "Variation Tests" folder at the very end;
//   3. tools/normalise-postman.mjs replaces the random ids, so the files are
//      byte-identical from run to run.
//
// Usage: node tools/generate-postman.mjs [OUT_DIR]   (default: postman/)

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { normalise, serialise, stableId } from './normalise-postman.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = resolve(process.argv[2] || join(root, 'postman'));
const spec = join(root, 'openapi.yaml');
const portman = join(root, 'node_modules', '@apideck', 'portman', 'bin', 'portman');

const USAGE = `How to use this collection

Select the "Latch (local)" environment, set base_url if Latch is not on http://127.0.0.1:8080, and run the folders from the top. Signup replaces an email at example.com by a fresh latch+<stamp>@example.com, so the collection can run again and again; put your own address in the environment to keep it. Signup, login and refresh store access_token, refresh_token, expires_at and session_id; creating or rolling an API key stores api_key and key_id; the organization requests store org_id, org_api_key and org_key_id. Before every request a collection script rotates the tokens through /auth/refresh when the access token is missing or expires within a minute, so the collection still works an hour later. Requests that revoke something revoke a throwaway session or key that their pre-request script creates. Logout, in the last folder, ends the session. No script prints a token, key or password.

`;

class GenerateError extends Error {
  constructor(message, detail) {
    super(message);
    this.detail = detail;
  }
}

function fail(message, detail) {
  throw new GenerateError(message, detail);
}

// portmanConfig reads postman/portman-config.json and makes its `file:` script
// references absolute, since portman runs in a scratch directory.
function portmanConfig() {
  const text = readFileSync(join(root, 'postman', 'portman-config.json'), 'utf8');
  return JSON.parse(text, (key, value) =>
    typeof value === 'string' && value.startsWith('file:') && !value.startsWith('file:/')
      ? `file:${join(root, value.slice('file:'.length))}`
      : value);
}

function runPortman(scratch, { includeTests, collectionName }) {
  const output = join(scratch, includeTests ? 'contract.json' : 'collection.json');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PORTMAN_')));
  const args = [
    portman,
    '--local', spec,
    '--output', output,
    '--portmanConfigFile', join(scratch, 'portman-config.json'),
    '--postmanConfigFile', join(root, 'postman', 'postman-config.json'),
    '--envFile', join(scratch, '.env'),
    `--includeTests=${includeTests}`,
    '--logAssignVariables=false',
    '--collectionName', collectionName,
  ];
  const run = spawnSync(process.execPath, args, { cwd: scratch, env, encoding: 'utf8' });
  const log = `${run.stdout || ''}${run.stderr || ''}`;
  if (run.error) {
    fail(`cannot run portman: ${run.error.message}`);
  }
  if (run.status !== 0 || !existsSync(output)) {
    fail(`portman failed (exit ${run.status}) writing ${collectionName}`, log);
  }
  return JSON.parse(readFileSync(output, 'utf8'));
}

// useBaseUrl points every request at {{base_url}} and drops portman's baseUrl
// variable (it holds the spec's relative server URL, "/").
function useBaseUrl(collection) {
  collection.variable = (collection.variable || []).filter((v) => v.key !== 'baseUrl');
  const text = JSON.stringify(collection);
  if (!text.includes('{{baseUrl}}')) {
    fail('no {{baseUrl}} in the portman output: has its URL handling changed?');
  }
  return JSON.parse(text.replaceAll('{{baseUrl}}', '{{base_url}}'));
}

// placeLogoutLast moves POST /auth/logout from the auth folder into a final
// folder of its own.
function placeLogoutLast(collection) {
  const auth = collection.item.find((f) => f.name === 'auth' && Array.isArray(f.item));
  const index = auth ? auth.item.findIndex((r) => r.request && r.request.method === 'POST'
    && (r.request.url.path || []).join('/') === 'auth/logout') : -1;
  if (index < 0) {
    fail('POST /auth/logout is not in the auth folder of the portman output');
  }
  const [logout] = auth.item.splice(index, 1);
  collection.item.push({
    id: stableId('folder:auth: logout'),
    name: 'auth: logout',
    description: {
      content: 'The logout request of the auth tag, on its own at the end: it ends the session that every other request uses.',
      type: 'text/plain',
    },
    item: [logout],
  });
  return collection;
}

function describe(collection) {
  const description = collection.info.description || { type: 'text/plain' };
  description.content = USAGE + (description.content || '');
  collection.info.description = description;
  return collection;
}

// environment takes its defaults (base_url, email, password) from the
// collection variables of the portman config, so both files agree. The
// password is for a throwaway local account.
function environment(config) {
  const defaults = (config.globals && config.globals.collectionVariables) || {};
  for (const key of ['base_url', 'email', 'password']) {
    if (typeof defaults[key] !== 'string' || defaults[key] === '') {
      fail(`postman/portman-config.json: globals.collectionVariables.${key} is missing`);
    }
  }
  const secret = new Set(['password', 'access_token', 'refresh_token', 'api_key']);
  const values = [
    ['base_url', defaults.base_url],
    ['email', defaults.email],
    ['password', defaults.password],
    ['access_token', ''],
    ['refresh_token', ''],
    ['expires_at', ''],
    ['api_key', ''],
    ['session_id', ''],
  ].map(([key, value]) => ({ key, value, type: secret.has(key) ? 'secret' : 'default', enabled: true }));
  return { id: stableId('environment:Latch (local)'), name: 'Latch (local)', values, _postman_variable_scope: 'environment' };
}

function main() {
  if (!existsSync(portman)) {
    fail(`${portman} is missing: run npm ci first`);
  }
  const scratch = mkdtempSync(join(tmpdir(), 'latch-portman-'));
  try {
    const config = portmanConfig();
    writeFileSync(join(scratch, 'portman-config.json'), JSON.stringify(config, null, 2));
    writeFileSync(join(scratch, '.env'), '');
    const outputs = [
      ['latch.postman_collection.json', { includeTests: false, collectionName: 'Latch' }],
      ['latch.postman_contract.json', { includeTests: true, collectionName: 'Latch contract tests' }],
    ];
    for (const [file, options] of outputs) {
      let collection = runPortman(scratch, options);
      collection = describe(placeLogoutLast(useBaseUrl(collection)));
      writeFileSync(join(outDir, file), serialise(normalise(collection)));
    }
    writeFileSync(join(outDir, 'latch.postman_environment.json'), serialise(normalise(environment(config))));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

try {
  main();
} catch (err) {
  console.error(`generate-postman: ${err.message}`);
  if (err.detail) {
    console.error(err.detail.trimEnd());
  }
  if (!(err instanceof GenerateError)) {
    console.error(err.stack);
  }
  process.exit(1);
}

#!/usr/bin/env node
// build.mjs builds dist/: the ESM build (dist/*.js, tsconfig.json) and the
// CommonJS build (dist/cjs/*.js, tsconfig.cjs.json, marked by a package.json
// of its own), each with its type declarations. It is the package's `prepare`
// script, so `npm pack` and `npm install <folder>` build dist/ from a fresh
// clone: when TypeScript is not installed yet, it first installs this
// package's pinned dependencies (package-lock.json) with `npm ci`.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args, env = process.env) => execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env });

function tscPath() {
  try {
    return createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
  } catch {
    return undefined;
  }
}

if (!tscPath() || !existsSync(join(root, 'node_modules', 'openapi-fetch'))) {
  // npm runs `prepare` in the folder being installed or packed with the
  // settings of the outer command (npm_config_*): drop them, so that an
  // outer --omit=dev, --global or --install-links does not reach this one.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_config_/i.test(k) || /^npm_config_(cache|registry|userconfig|globalconfig)$/i.test(k)));
  const npm = process.env.npm_execpath;
  console.error('@latchauth/client: installing the pinned build dependencies (npm ci)');
  const args = ['ci', '--include=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'];
  if (npm && npm.endsWith('.js')) run(process.execPath, [npm, ...args], env);
  else run(process.platform === 'win32' ? 'npm.cmd' : 'npm', args, env);
}
const tsc = tscPath();
if (!tsc) throw new Error('@latchauth/client: typescript is not installed; run npm ci in sdk/typescript');

rmSync(join(root, 'dist'), { recursive: true, force: true });
run(process.execPath, [tsc, '-p', 'tsconfig.json']);
run(process.execPath, [tsc, '-p', 'tsconfig.cjs.json']);
run(process.execPath, [tsc, '-p', 'tsconfig.node.json']);
run(process.execPath, [tsc, '-p', 'tsconfig.node.cjs.json']);
mkdirSync(join(root, 'dist', 'cjs'), { recursive: true });
writeFileSync(join(root, 'dist', 'cjs', 'package.json'), '{ "type": "commonjs" }\n');

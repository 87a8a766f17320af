#!/usr/bin/env node
// spec_json.mjs prints openapi.yaml as JSON, for tools/generate_models.py,
// which uses Python's standard library only. It resolves `yaml` from the
// repository's Node tooling (node_modules at the root).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';

const [spec] = process.argv.slice(2);
if (!spec) {
  console.error('usage: node tools/spec_json.mjs OPENAPI.yaml');
  process.exit(2);
}
const require = createRequire(resolve(process.cwd(), 'package.json'));
const YAML = require('yaml');
process.stdout.write(JSON.stringify(YAML.parse(readFileSync(spec, 'utf8')), null, 1) + '\n');

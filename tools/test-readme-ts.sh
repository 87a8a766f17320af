#!/usr/bin/env bash
# tools/test-readme-ts.sh: sdk/typescript/README.md, run exactly as written,
# against a live latchd (make test-readme-ts; also run by tools/test-sdk-long.sh).
#
# The README's fenced blocks are read by their info string:
#
#   ```sh           an install: its commands run, as they are, with bash -e in
#                   a fresh `npm init -y` project, LATCH_REPO set to a fresh
#                   copy of this clone (every file git tracks or would add,
#                   so uncommitted work is tested too; no node_modules, no dist)
#   ```js           a program, an ES module: run as example-N.mjs
#   ```cjs          a program, CommonJS: run as example-N.js (CommonJS in a
#                   default `npm init -y` project, whose "type" is commonjs)
#   ```ts fragment  an excerpt, not a program: not run
#
# Any other info string fails the check, so that no block goes unrun by
# mistake. Each install gets its own fresh copy and project; in each, the
# programs are type-checked (tsc --checkJs, with the copy's pinned
# TypeScript) and run with LATCH_URL pointing at latchd and HOME at an empty
# folder. Two small TypeScript files check that the package's types resolve
# through both `import` and `require`.
#
# Environment: BIN, GO; SDK_PREBUILT=1 uses $BIN/latchd as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
README=sdk/typescript/README.md

LATCHD_WHO=test-readme-ts
# shellcheck source=tools/latchd.sh
. tools/latchd.sh

# latchd.sh starts latchd with LATCH_AUTOCONFIRM_EMAIL=true: the API-key
# examples need a verified email.
if [ -z "${SDK_PREBUILT:-}" ]; then latchd_build || exit 1; fi
latchd_start || exit 1

WORK="$(mktemp -d "${TMPDIR:-/tmp}/readme-ts.XXXXXX")"
cleanup() { rm -rf "$WORK"; latchd_stop; }
trap cleanup EXIT

# The blocks, in order, as $WORK/blocks/NN.{sh,mjs,js}.
mkdir "$WORK/blocks"
node - "$README" "$WORK/blocks" <<'EOF'
const { readFileSync, writeFileSync } = require('node:fs');
const [readme, out] = process.argv.slice(2);
const kinds = { sh: 'sh', js: 'mjs', cjs: 'js', 'ts fragment': null };
let n = 0, open = null, body = [], lineNo = 0, bad = 0;
for (const line of readFileSync(readme, 'utf8').split('\n')) {
  lineNo++;
  if (open === null) {
    const m = /^```(.*)$/.exec(line);
    if (!m) continue;
    const info = m[1].trim();
    if (!(info in kinds)) {
      console.error(`${readme}:${lineNo}: a block with info string "${info}": mark it sh, js, cjs or ts fragment`);
      bad++;
    }
    open = info;
    body = [];
  } else if (/^```\s*$/.test(line)) {
    const ext = kinds[open];
    if (ext) writeFileSync(`${out}/${String(++n).padStart(2, '0')}.${ext}`, body.join('\n') + '\n');
    open = null;
  } else {
    body.push(line);
  }
}
if (open !== null) { console.error(`${readme}: an unclosed block`); bad++; }
if (bad) process.exit(1);
EOF
shopt -s nullglob
installs=("$WORK"/blocks/*.sh)
programs=("$WORK"/blocks/*.mjs "$WORK"/blocks/*.js)
if [ "${#installs[@]}" -eq 0 ] || [ "${#programs[@]}" -eq 0 ]; then
	latchd_say "FAIL: $README has no sh block or no program"
	exit 1
fi
latchd_say "$README: ${#installs[@]} install block(s), ${#programs[@]} program(s)"

# fresh_copy DIR: the files of this clone that git tracks or would add.
fresh_copy() {
	mkdir -p "$1"
	git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$ROOT/$f" ] && printf '%s\0' "$f"; done |
		tar -C "$ROOT" --null -T - -cf - | tar -xf - -C "$1"
}

passed=0
failed=0
check() { # check NAME CMD...: run CMD, count and say the result
	local name="$1"
	shift
	if "$@"; then
		passed=$((passed + 1))
		latchd_say "ok: $name"
	else
		failed=$((failed + 1))
		latchd_say "FAIL: $name"
		return 1
	fi
}

i=0
for install in "${installs[@]}"; do
	i=$((i + 1))
	repo="$WORK/repo-$i"
	app="$WORK/app-$i"
	fresh_copy "$repo"
	mkdir -p "$app" "$WORK/home-$i"
	(cd "$app" && npm init -y >/dev/null)
	latchd_say "install $i: $(tr '\n' ';' <"$install")"
	if ! check "install $i ($(basename "$install"))" bash -c 'cd "$1" && LATCH_REPO="$2" bash -euo pipefail "$3"' _ "$app" "$repo" "$install"; then
		continue
	fi
	files=()
	for p in "${programs[@]}"; do
		cp "$p" "$app/example-$(basename "$p")"
		files+=("example-$(basename "$p")")
	done
	cat >"$app/check-types.mts" <<'EOF'
import { LatchClient, NetworkError, type SignInResult } from '@latchauth/client';
import { FileStorage } from '@latchauth/client/node';
const c: LatchClient = new LatchClient({ baseUrl: 'http://127.0.0.1:1', storage: new FileStorage('~/t.json'), timeoutMs: 1 });
export const r: Promise<SignInResult> = c.signIn('a@example.com', 'p');
export const n: typeof NetworkError = NetworkError;
EOF
	cat >"$app/check-types.cts" <<'EOF'
import latch = require('@latchauth/client');
import node = require('@latchauth/client/node');
const c = new latch.LatchClient({ baseUrl: 'http://127.0.0.1:1', storage: new node.FileStorage('~/t.json') });
const r: Promise<latch.SignInResult> = c.signIn('a@example.com', 'p');
export = r;
EOF
	tsc="$repo/sdk/typescript/node_modules/typescript/bin/tsc"
	types=(--typeRoots "$repo/sdk/typescript/node_modules/@types" --types node)
	check "install $i: the programs type-check" \
		bash -c 'cd "$1" && shift && node "$@"' _ "$app" "$tsc" --noEmit --allowJs --checkJs --module nodenext --target es2022 --skipLibCheck "${types[@]}" "${files[@]}" || true
	check "install $i: the package's types resolve through import and require" \
		bash -c 'cd "$1" && shift && node "$@"' _ "$app" "$tsc" --noEmit --strict --module nodenext --target es2022 --skipLibCheck "${types[@]}" check-types.mts check-types.cts || true
	for f in "${files[@]}"; do
		check "install $i: node $f" bash -c 'cd "$1" && HOME="$2" LATCH_URL="$3" node "$4"' _ "$app" "$WORK/home-$i" "$LATCHD_URL" "$f" || true
	done
done

echo "$passed passed, $failed failed"
if [ "$failed" -ne 0 ]; then
	latchd_log_tail 20
	exit 1
fi

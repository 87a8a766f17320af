#!/usr/bin/env bash
# tools/test-sdk-long.sh: the long SDK checks (make test-sdk-long, run by .ci/run).
#
# 1. Five tabs of one origin in headless Chromium share one session through
#    the TypeScript SDK with localStorage, for MULTITAB_SECONDS (180): once
#    with Web Locks, once with navigator.locks deleted (the storage lease).
# 2. Four Python processes share one FileStore for MULTIPROC_SECONDS (120).
# 3. tools/test-readme-ts.sh runs sdk/typescript/README.md as written (each
#    install in a fresh copy of the clone and a fresh `npm init -y` project,
#    then every ESM and CommonJS program, against a latchd of its own);
#    tools/test-readme-py.sh runs sdk/python/README.md's install (a fresh
#    venv) and example as written.
# latchd runs with a 10 s access token lifetime and allows the test page's
# origin (LATCH_CORS_ORIGINS). Counts go to .ci/out/sdk-long.jsonl, the
# screenshots to .ci/out/sdk-multitab-*.png.
#
# Environment: BIN, GO, CHROMIUM (default /usr/bin/chromium), MULTITAB_SECONDS, MULTIPROC_SECONDS.
set -euo pipefail
cd "$(dirname "$0")/.."

LATCHD_WHO=test-sdk-long
# shellcheck source=tools/latchd.sh
. tools/latchd.sh

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
MULTITAB_SECONDS="${MULTITAB_SECONDS:-180}"
MULTIPROC_SECONDS="${MULTIPROC_SECONDS:-120}"
OUT=.ci/out
mkdir -p "$OUT"
rm -f "$OUT/sdk-long.jsonl"

latchd_chromium || exit 1

PAGE_PORT="$(latchd_free_port)"
export LATCH_ACCESS_TTL=10s LATCH_CORS_ORIGINS="http://127.0.0.1:$PAGE_PORT"
# SDK_PREBUILT=1 uses $BIN/latchd as it is (a build from another tree).
if [ -z "${SDK_PREBUILT:-}" ]; then latchd_build || exit 1; fi
latchd_start || exit 1
export LATCHD_URL LATCHD_LOG

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sdk-long.XXXXXX")"
cleanup() { rm -rf "$WORK"; latchd_stop; }
trap cleanup EXIT

status=0
(cd sdk/typescript && npm run --silent build)
for mode in web-locks storage-lease; do
	flag=""
	[ "$mode" = storage-lease ] && flag="--no-locks"
	node sdk/typescript/test/multitab.mjs --latchd "$LATCHD_URL" --log "$LATCHD_LOG" --port "$PAGE_PORT" \
		--duration "$MULTITAB_SECONDS" --ttl 10 $flag --chromium "$CHROMIUM" \
		--screenshot "$OUT/sdk-multitab-$mode.png" --out "$OUT/sdk-long.jsonl" || status=1
done

python3 sdk/python/tests/multiprocess.py --duration "$MULTIPROC_SECONDS" --processes 4 --ttl 10 \
	--out "$OUT/sdk-long.jsonl" || status=1

# The TypeScript README, as written: its installs from a fresh copy, its programs.
latchd_say "sdk/typescript/README.md as written (tools/test-readme-ts.sh)"
SDK_PREBUILT=1 BIN="$BIN" tools/test-readme-ts.sh || { latchd_say "FAIL: the TypeScript README"; status=1; }

latchd_say "sdk/python/README.md as written (tools/test-readme-py.sh)"
SDK_PREBUILT=1 BIN="$BIN" GO="$GO" tools/test-readme-py.sh || { latchd_say "FAIL: the Python package's README"; status=1; }

[ "$status" -eq 0 ] || latchd_log_tail 20
cat "$OUT/sdk-long.jsonl" 2>/dev/null || true
exit "$status"

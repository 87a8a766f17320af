#!/usr/bin/env bash
# tools/test-browser-mfa.sh: passkeys in headless Chromium (make test-browser-mfa).
#
# Makes sure Debian's Chromium is installed (as tools/test-browser.sh does),
# builds latchd, picks a free port for the test page's origin
# (http://localhost:PORT), starts latchd with that origin as its only
# WebAuthn origin and RP id localhost, and runs tools/mfa-browser-test.mjs,
# which serves the page on that origin, proxies the API to latchd, and
# drives the DevTools virtual authenticator. The screenshot goes to
# .ci/out/mfa.png. Exits non-zero on any failure.
#
# Environment: BIN (default bin), GO (default go), CHROMIUM (default
# /usr/bin/chromium), SCREENSHOT (default .ci/out/mfa.png).
set -euo pipefail
cd "$(dirname "$0")/.."

LATCHD_WHO=test-browser-mfa
# shellcheck source=tools/latchd.sh
. tools/latchd.sh

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
SCREENSHOT="${SCREENSHOT:-.ci/out/mfa.png}"

latchd_chromium || exit 1
if [ ! -d node_modules/playwright-core ]; then
	latchd_say "playwright-core is missing from node_modules: run npm ci (make node_modules/.installed) first"
	exit 1
fi

latchd_build || exit 1
page_port="$(latchd_free_port)" || { latchd_say "cannot find a free port"; exit 1; }
export LATCH_WEBAUTHN_RP_ID=localhost
export LATCH_WEBAUTHN_ORIGINS="http://localhost:$page_port"
latchd_start || exit 1

status=0
node tools/mfa-browser-test.mjs --latchd-url "$LATCHD_URL" --listen "$page_port" \
	--screenshot "$SCREENSHOT" --chromium "$CHROMIUM" || status=$?
if [ "$status" -ne 0 ]; then
	latchd_log_tail 40
	exit "$status"
fi

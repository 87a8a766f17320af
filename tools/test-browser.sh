#!/usr/bin/env bash
# tools/test-browser.sh: the browser check of the API reference (make test-browser).
#
# Makes sure Debian's Chromium is installed (playwright-core drives it; no
# browser is downloaded), builds latchd, starts it on a free loopback port
# with a fresh SQLite database, and runs tools/browser-test.mjs against
# /docs: every operation of openapi.yaml must be rendered. The screenshot goes
# to .ci/out/docs.png. Exits non-zero on any failure.
#
# Environment: BIN (default bin), GO (default go), CHROMIUM (default /usr/bin/chromium),
# SCREENSHOT (default .ci/out/docs.png).
set -euo pipefail
cd "$(dirname "$0")/.."

LATCHD_WHO=test-browser
# shellcheck source=tools/latchd.sh
. tools/latchd.sh

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
SCREENSHOT="${SCREENSHOT:-.ci/out/docs.png}"

latchd_chromium || exit 1
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/yaml ]; then
	latchd_say "playwright-core or yaml is missing from node_modules: run npm ci (make node_modules/.installed) first"
	exit 1
fi

latchd_build || exit 1
# The reset page is driven with a real mailed link, read from the log.
export LATCH_MAIL_LOG_LINKS=true
latchd_start || exit 1

status=0
node tools/browser-test.mjs --base-url "$LATCHD_URL" --spec openapi.yaml \
	--screenshot "$SCREENSHOT" --chromium "$CHROMIUM" --latchd-log "$LATCHD_LOG" || status=$?
if [ "$status" -ne 0 ]; then
	latchd_log_tail 40
	exit "$status"
fi

#!/usr/bin/env bash
# tools/test-sdk.sh: the TypeScript and Python SDK suites against a live
# latchd (make test-sdk).
#
# Builds latchd and starts it like tools/latchd.sh does (free loopback port,
# fresh SQLite database, no rate limits), with a 10 s access token lifetime,
# autoconfirmed signups (so they can create API keys), reset links and
# sign-in codes in its log, and one allowed sign-in redirect;
# ts-ops@example.com and py-ops@example.com are operators. Then: the
# TypeScript SDK is built (ESM and CommonJS, npm run build)
# and its node:test suite runs;
# the Python SDK is checked with mypy --strict and its unittest suite runs.
# Each suite talks to latchd through a recording proxy of its own.
#
# Environment: BIN (default bin), GO (default go), SDK (ts, py or both; default both).
set -euo pipefail
cd "$(dirname "$0")/.."

LATCHD_WHO=test-sdk
# shellcheck source=tools/latchd.sh
. tools/latchd.sh
SDK="${SDK:-both}"

export LATCH_ACCESS_TTL=10s LATCH_MAIL_LOG_LINKS=true LATCH_AUTOCONFIRM_EMAIL=true LATCH_OTP_REDIRECT_URLS=http://app.test/callback
# The admin tests' operators (one per suite): each records the verification
# of its email by a password reset through the mail log (an autoconfirmed
# signup records none), then creates its key. Their webhooks post to the
# suite's own receiver on loopback.
export LATCH_OPERATOR_EMAILS=ts-ops@example.com,py-ops@example.com LATCH_WEBHOOK_ALLOW_PRIVATE=true

# SDK_PREBUILT=1 uses $BIN/latchd as it is (a build from another tree).
if [ -z "${SDK_PREBUILT:-}" ]; then latchd_build || exit 1; fi
latchd_start || exit 1
export LATCHD_URL LATCHD_LOG

status=0
if [ "$SDK" != py ]; then
	latchd_say "TypeScript SDK: build and test"
	(cd sdk/typescript && npm run --silent build && npx tsc -p tsconfig.test.json && node --test --test-concurrency=1 test/sdk.test.mjs test/admin.test.mjs) || status=1
fi
if [ "$SDK" != ts ]; then
	latchd_say "Python SDK: mypy --strict and tests"
	(cd sdk/python && /usr/bin/python3 -m mypy --strict src tests tools && python3 -m unittest discover -s tests -v) || status=1
fi
if [ "$status" -ne 0 ]; then
	latchd_log_tail 30
fi
exit "$status"

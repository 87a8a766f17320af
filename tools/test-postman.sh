#!/usr/bin/env bash
# tools/test-postman.sh: the Postman contract run (make test-postman).
#
# Builds latchd, starts it on a free loopback port with a fresh SQLite
# database, waits for GET /health, runs postman/latch.postman_contract.json
# with newman against it, and stops it again. Exits non-zero when the build,
# the start or any assertion fails. Script console output is left out of the
# report (--reporter-cli-no-console), so no token reaches the CI log.
#
# Environment: BIN (default bin), GO (default go), NEWMAN (default
# node_modules/.bin/newman), COLLECTION (default postman/latch.postman_contract.json).
set -euo pipefail
cd "$(dirname "$0")/.."

LATCHD_WHO=test-postman
# shellcheck source=tools/latchd.sh
. tools/latchd.sh

NEWMAN="${NEWMAN:-node_modules/.bin/newman}"
COLLECTION="${COLLECTION:-postman/latch.postman_contract.json}"

if [ ! -x "$NEWMAN" ]; then
	latchd_say "$NEWMAN is missing: run npm ci (make node_modules/.installed) first"
	exit 1
fi
if [ ! -f "$COLLECTION" ]; then
	latchd_say "$COLLECTION is missing: run make generate-postman first"
	exit 1
fi

# The spec's example redirect_to of POST /auth/otp, which the collection sends.
export LATCH_OTP_REDIRECT_URLS=https://app.example.com/auth/callback

latchd_build || exit 1
latchd_start || exit 1

status=0
"$NEWMAN" run "$COLLECTION" \
	--env-var "base_url=$LATCHD_URL" \
	--reporters cli \
	--reporter-cli-no-console \
	--timeout-request 15000 \
	--timeout 900000 \
	--color off || status=$?

if [ "$status" -ne 0 ]; then
	latchd_say "newman failed (exit $status): see the failures above"
	latchd_log_tail 40
	exit "$status"
fi
latchd_say "contract collection passed against $LATCHD_URL"

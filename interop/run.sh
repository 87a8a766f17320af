#!/usr/bin/env bash
# interop/run.sh: Latch against unmodified well-known clients (make test-interop).
#
# Installs interop/'s pinned packages (npm ci), types a program from
# openapi.yaml with openapi-typescript and type-checks it (tsc --noEmit),
# builds latchd and starts it like the other end-to-end checks (a fresh
# SQLite database, LATCH_AUTOCONFIRM_EMAIL=true, see tools/latchd.sh), then
# runs oauth.mjs (openid-client, jose), the typed program, webhooks.mjs
# (Latch's webhooks verified by the standardwebhooks reference package) and
# PyJWT (pyjwt_check.py, Debian's python3-jwt) against it.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

LATCHD_WHO=test-interop
# shellcheck source=tools/latchd.sh
. tools/latchd.sh

(cd interop && npm ci --no-audit --no-fund --silent)
(cd interop && node_modules/.bin/openapi-typescript ../openapi.yaml -o schema.gen.d.ts --silent)
(cd interop && node_modules/.bin/tsc --noEmit -p . && node_modules/.bin/tsc -p .)
latchd_say "the typed program type-checks against openapi.yaml"

# PyJWT comes from Debian (python3-jwt); no Python package index is used.
if ! /usr/bin/python3 -c 'import jwt, cryptography' 2>/dev/null; then
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	latchd_say "installing Debian's python3-jwt"
	$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq python3-jwt python3-cryptography
fi

latchd_build || exit 1
# The webhook check (webhooks.mjs) runs its receiver on loopback.
export LATCH_WEBHOOK_ALLOW_PRIVATE=true
latchd_start || exit 1

status=0
node interop/oauth.mjs "$LATCHD_URL" || status=$?
if [ "$status" -eq 0 ]; then
	node interop/out/flows.js "$LATCHD_URL" || status=$?
fi
if [ "$status" -eq 0 ]; then
	(cd interop && node webhooks.mjs "$LATCHD_URL" webhooks@interop.test) || status=$?
fi
if [ "$status" -eq 0 ]; then
	/usr/bin/python3 interop/pyjwt_check.py "$LATCHD_URL" latch || status=$?
fi
if [ "$status" -ne 0 ]; then
	latchd_log_tail 40
	exit "$status"
fi
latchd_say "interop checks passed against $LATCHD_URL"

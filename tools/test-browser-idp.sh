#!/usr/bin/env bash
# tools/test-browser-idp.sh: provider sign-in in headless Chromium
# (make test-browser-idp).
#
# Makes sure Debian's Chromium is installed (as tools/test-browser.sh does)
# and interop/'s pinned packages are (oidc-provider), builds latchd, starts
# the real OpenID provider interop/oidc-provider.mjs, starts latchd with it
# as provider "op" (LATCH_PROVIDERS), the test application's callback as
# its only redirect URL and the application's origin in CORS, registers
# Latch's callback with the provider, and runs tools/idp-browser-test.mjs:
# the application's page -> Latch's authorize -> the provider's login and
# consent pages -> Latch's callback -> the application, which exchanges the
# code for tokens. Then enterprise SSO: the test script sets up an
# organization (a domain verified through its own DNS server, which
# LATCH_DNS_RESOLVER points latchd at; a second oidc-provider, which it
# starts, as the organization's connection), and a new user of the domain
# signs in through /auth/sso in a fresh browser. The screenshots go to .ci/out/idp.png and
# .ci/out/idp-sso.png. Exits non-zero on any failure.
#
# Environment: BIN (default bin), GO (default go), CHROMIUM (default
# /usr/bin/chromium), SCREENSHOT (default .ci/out/idp.png).
set -euo pipefail
cd "$(dirname "$0")/.."

LATCHD_WHO=test-browser-idp
# shellcheck source=tools/latchd.sh
. tools/latchd.sh

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
SCREENSHOT="${SCREENSHOT:-.ci/out/idp.png}"

latchd_chromium || exit 1
for m in node_modules/playwright-core interop/node_modules/oidc-provider sdk/typescript/node_modules/openapi-fetch; do
	if [ ! -d "$m" ]; then
		latchd_say "$m is missing: run make node_modules/.installed interop/node_modules/.installed sdk/typescript/node_modules/.installed first"
		exit 1
	fi
done

latchd_build || exit 1
latchd_say "building the TypeScript SDK, which the test application uses"
(cd sdk/typescript && npm run --silent build) || exit 1
app_port="$(latchd_free_port)" || { latchd_say "cannot find a free port"; exit 1; }
app="http://localhost:$app_port"
dns_port="$(latchd_free_port)" || { latchd_say "cannot find a free port"; exit 1; }

# The provider prints its issuer, then waits for Latch's client.
coproc OP { exec node interop/oidc-provider.mjs 2>/dev/null; }
op_pid=$OP_PID
read -r -u "${OP[0]}" hello
issuer="$(node -e 'console.log(JSON.parse(process.argv[1]).issuer)' "$hello")"
latchd_say "oidc-provider is up at $issuer"

client_secret="browser-test-secret-0123456789"
export LATCH_PROVIDERS="[{\"id\":\"op\",\"kind\":\"oidc\",\"name\":\"Test OP\",\"issuer\":\"$issuer\",\"client_id\":\"latch-browser\",\"client_secret\":\"$client_secret\"}]"
export LATCH_REDIRECT_URLS="$app/callback,$app/sso-callback"
export LATCH_DNS_RESOLVER="127.0.0.1:$dns_port"
# The organization's provider listens on loopback.
export LATCH_SSO_ALLOW_PRIVATE=true
export LATCH_CORS_ORIGINS="$app"
latchd_start || { kill "$op_pid" 2>/dev/null || true; exit 1; }
trap 'latchd_stop; kill "$op_pid" 2>/dev/null || true' EXIT

printf '{"client_id":"latch-browser","client_secret":"%s","redirect_uris":["%s/auth/providers/op/callback"]}\n' \
	"$client_secret" "$LATCHD_URL" >&"${OP[1]}"
read -r -u "${OP[0]}" ready
latchd_say "oidc-provider registered Latch's client: $ready"

status=0
node tools/idp-browser-test.mjs --latchd-url "$LATCHD_URL" --listen "$app_port" \
	--screenshot "$SCREENSHOT" --chromium "$CHROMIUM" --dns-port "$dns_port" || status=$?
if [ "$status" -ne 0 ]; then
	latchd_log_tail 40
	exit "$status"
fi

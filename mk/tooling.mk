# mk/tooling.mk: the Node-based tooling of Latch, all generated from openapi.yaml.
# Included from the top-level Makefile. Targets:
#
#   generate-postman  postman/latch.postman_{collection,contract,environment}.json
#   generate-docs     server/pages/reference.html, the self-contained API reference (served at /docs)
#   lint-spec         redocly lint of openapi.yaml with .redocly.yaml
#   test-postman      build latchd, run the contract collection against it with newman
#   test-browser      build latchd, check /docs in headless Chromium, screenshot to .ci/out/docs.png
#   test-browser-idp  build latchd, sign in with oidc-provider and through SSO in headless Chromium, screenshots to .ci/out/idp*.png
#   test-interop      build latchd, run openid-client, jose and an openapi-typescript program against it (interop/)
#
# Node packages come from package-lock.json through `npm ci` (node_modules/.installed).
# Helper targets of this file start with tooling-.

BIN ?= bin
GO ?= go
NPM ?= npm
NODE ?= node
TOOLING_NODE_BIN := node_modules/.bin
# Redocly CLI sends usage data unless told not to; the docs page it builds
# would report every visitor too (see also `telemetry: off` in .redocly.yaml).
TOOLING_REDOCLY := REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true $(TOOLING_NODE_BIN)/redocly

.PHONY: generate-postman generate-docs lint-spec test-postman test-browser test-interop tooling-check-determinism

# npm ci when node_modules is missing or package.json / package-lock.json changed.
# playwright-core downloads no browser; the variable only makes that explicit.
node_modules/.installed: package.json package-lock.json
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(NPM) ci --no-audit --no-fund
	@touch $@

# interop/'s own pinned packages: oidc-provider (the real OpenID provider of
# the provider sign-in tests in server/providers_test.go), openid-client, jose.
interop/node_modules/.installed: interop/package.json interop/package-lock.json
	cd interop && $(NPM) ci --no-audit --no-fund
	@touch $@

## generate-postman: regenerate the Postman collections and environment from openapi.yaml
generate-postman: node_modules/.installed
	$(NODE) tools/generate-postman.mjs

## generate-docs: regenerate server/pages/reference.html (the API reference at /docs) from openapi.yaml
generate-docs: node_modules/.installed
	$(TOOLING_REDOCLY) build-docs openapi.yaml --inlineBundle --config .redocly.yaml -o server/pages/reference.html
	$(NODE) tools/docs-offline.mjs server/pages/reference.html

## lint-spec: lint openapi.yaml (recommended-strict plus the issue-6 rules in .redocly.yaml)
lint-spec: node_modules/.installed
	$(TOOLING_REDOCLY) lint --config .redocly.yaml --lint-config=error openapi.yaml

## test-postman: run the Postman contract collection with newman against a fresh latchd
test-postman: node_modules/.installed
	BIN=$(BIN) GO=$(GO) tools/test-postman.sh

## test-browser: check the API reference page of a fresh latchd in headless Chromium
test-browser: node_modules/.installed
	BIN=$(BIN) GO=$(GO) tools/test-browser.sh

## test-browser-mfa: passkeys in headless Chromium with the DevTools virtual authenticator, screenshot to .ci/out/mfa.png
.PHONY: test-browser-mfa
test-browser-mfa: node_modules/.installed
	BIN=$(BIN) GO=$(GO) tools/test-browser-mfa.sh

## test-browser-idp: provider sign-in and enterprise SSO (/auth/sso) in headless Chromium against oidc-provider (app -> Latch -> provider login -> app -> tokens), screenshots to .ci/out/idp.png and idp-sso.png
.PHONY: test-browser-idp
test-browser-idp: node_modules/.installed interop/node_modules/.installed sdk/typescript/node_modules/.installed
	BIN=$(BIN) GO=$(GO) tools/test-browser-idp.sh

## test-interop: unmodified OAuth/OIDC clients and a typed program against a fresh latchd (interop/ has its own lockfile)
test-interop:
	BIN=$(BIN) GO=$(GO) interop/run.sh

# tooling-check-determinism: generate the Postman files and the docs three
# times into a scratch directory and fail unless every run is byte-identical.
tooling-check-determinism: node_modules/.installed
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	before=$$(cksum < openapi.yaml); \
	for i in 1 2 3; do \
		mkdir -p "$$tmp/$$i"; \
		$(NODE) tools/generate-postman.mjs "$$tmp/$$i"; \
		$(TOOLING_REDOCLY) build-docs openapi.yaml --inlineBundle --config .redocly.yaml -o "$$tmp/$$i/index.html" >/dev/null 2>&1; \
		$(NODE) tools/docs-offline.mjs "$$tmp/$$i/index.html"; \
	done; \
	if [ "$$(cksum < openapi.yaml)" != "$$before" ]; then \
		echo "tooling: openapi.yaml changed during the check; run it again"; exit 1; fi; \
	diff -rq "$$tmp/1" "$$tmp/2"; diff -rq "$$tmp/1" "$$tmp/3"; \
	echo "tooling: generated files are byte-identical over 3 runs"

# mk/sdk.mk: the TypeScript and Python SDKs (sdk/typescript, sdk/python),
# generated from openapi.yaml. Included from the top-level Makefile; the
# prerequisites below hook them into `generate`, `check-generated` and `test`.
#
#   generate-sdk       sdk/typescript/src/{schema,operations}.gen.ts (openapi-typescript)
#                      and sdk/python/src/latch_client/{models,api}.py (tools/generate_models.py)
#   test-sdk           both SDKs' suites against a live latchd (about a minute); part of `make test`
#   test-sdk-long      the 3-minute five-tab browser test (Web Locks, then the storage-lease
#                      fallback), the 2-minute four-process Python test, and the READMEs'
#                      install checks (test-readme-ts, test-readme-py); counts and a
#                      screenshot go to .ci/out/ (run by .ci/run)
#   test-readme-ts     sdk/typescript/README.md run as written: each install block in a fresh
#                      copy of the clone and a fresh `npm init -y` project, then every program
#                      (ESM and CommonJS) against a live latchd (about 2 minutes)
#   test-readme-py     sdk/python/README.md's install and example, as written, in a fresh
#                      copy of the tree (tools/test-readme-py.sh)
#   test-readme-go     docs/sdks.md's Go install and example, run as written from a copy of the
#                      tree against a live latchd (tools/test-readme-go.sh; needs the Go proxy)
#
# The TypeScript SDK's packages come from sdk/typescript/package-lock.json;
# mypy (for the Python SDK's --strict check) is Debian's, installed when missing.

SDK_TS := sdk/typescript
SDK_PY := sdk/python
SDK_GENERATED := $(SDK_TS)/src/schema.gen.ts $(SDK_TS)/src/operations.gen.ts \
	$(SDK_PY)/src/latch_client/models.py $(SDK_PY)/src/latch_client/api.py

.PHONY: generate-sdk check-generated-sdk test-sdk test-sdk-long test-readme-ts test-readme-py sdk-mypy

generate: generate-sdk
check-generated: check-generated-sdk
test: test-sdk

$(SDK_TS)/node_modules/.installed: $(SDK_TS)/package.json $(SDK_TS)/package-lock.json
	cd $(SDK_TS) && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(NPM) ci --ignore-scripts --no-audit --no-fund
	@touch $@

## generate-sdk: regenerate the SDKs' types and models from openapi.yaml
generate-sdk: $(SDK_TS)/node_modules/.installed node_modules/.installed
	cd $(SDK_TS) && node_modules/.bin/openapi-typescript ../../openapi.yaml -o src/schema.gen.ts --silent
	cd $(SDK_TS) && $(NODE) scripts/generate-operations.mjs ../../openapi.yaml src/operations.gen.ts
	@set -e; tmp=$$(mktemp); trap 'rm -f "$$tmp"' EXIT; \
	$(NODE) $(SDK_PY)/tools/spec_json.mjs openapi.yaml > "$$tmp"; \
	python3 $(SDK_PY)/tools/generate_models.py "$$tmp" $(SDK_PY)/src/latch_client

check-generated-sdk: generate
	@if [ -n "$$(git status --porcelain -- $(SDK_GENERATED))" ]; then \
		echo "generated SDK files are out of date; run make generate and commit:"; \
		git status --porcelain -- $(SDK_GENERATED); exit 1; fi

# sdk-mypy: Debian's mypy, and python3-cryptography for the tests' software
# WebAuthn authenticator (the Python SDK has no PyPI here).
sdk-mypy:
	@if ! /usr/bin/python3 -m mypy --version >/dev/null 2>&1 || ! /usr/bin/python3 -c 'import cryptography' 2>/dev/null; then \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get -o DPkg::Lock::Timeout=600 update && DEBIAN_FRONTEND=noninteractive $$sudo apt-get -o DPkg::Lock::Timeout=600 install -y mypy python3-cryptography; fi

## test-sdk: the TypeScript and Python SDK suites against a live latchd
test-sdk: $(SDK_TS)/node_modules/.installed sdk-mypy
	BIN=$(BIN) GO=$(GO) tools/test-sdk.sh

## test-readme-ts: the TypeScript SDK's README, installs and programs, run as written
test-readme-ts:
	BIN=$(BIN) GO=$(GO) tools/test-readme-ts.sh

## test-readme-py: run sdk/python/README.md's install and example as written, in a fresh copy of the tree
test-readme-py:
	BIN=$(BIN) GO=$(GO) tools/test-readme-py.sh

## test-sdk-long: multi-tab browser test, multi-process Python test, README install checks (.ci/out/)
test-sdk-long: $(SDK_TS)/node_modules/.installed
	BIN=$(BIN) GO=$(GO) tools/test-sdk-long.sh

## test-readme-go: docs/sdks.md's Go install and example, run as written from a copy of the tree
.PHONY: test-readme-go
test-readme-go:
	BIN=$(BIN) GO=$(GO) tools/test-readme-go.sh

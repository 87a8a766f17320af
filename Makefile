# Latch. The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
GO    ?= go
BIN   ?= bin
GOFLAGS ?=
export CGO_ENABLED ?= 0

.PHONY: run build test generate generate-go check-generated vet fmt-check fuzz clean

## run: build latchd and serve on 127.0.0.1:8080 with an embedded SQLite database (./latch.db); mails go to the log, links shown
run: build
	LATCH_MAIL_LOG_LINKS=$${LATCH_MAIL_LOG_LINKS:-true} $(BIN)/latchd serve

## build: build latchd
build:
	$(GO) build -o $(BIN)/latchd ./cmd/latchd

## test: the whole suite, with the race detector (PostgreSQL tests skip loudly when none is reachable, fail under CI=true), and the spec lint; installs interop/'s oidc-provider, which the provider sign-in tests start
test: lint-spec interop/node_modules/.installed
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m ./...

## generate: regenerate every generated file from openapi.yaml (Go code, Postman files, API reference page)
generate: generate-go generate-postman generate-docs

generate-go:
	$(GO) generate ./...

## check-generated: regenerate and fail on any difference
check-generated: generate
	@if [ -n "$$(git status --porcelain -- api client server/pages/reference.html postman)" ]; then \
		echo "generated files are out of date; run make generate and commit:"; \
		git status --porcelain -- api client server/pages/reference.html postman; git --no-pager diff --stat -- api client server/pages/reference.html postman; exit 1; fi

## fuzz: run every fuzz target for FUZZTIME each (CI: 20s)
FUZZTIME ?= 30s
FUZZ_TARGETS := \
	./internal/token:FuzzVerify \
	./internal/apikey:FuzzParse \
	./internal/service:FuzzDecodeRefreshToken \
	./internal/password:FuzzDecode \
	./internal/domain:FuzzNormalizeEmail
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$fn in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg; done

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

clean:
	rm -rf $(BIN)

include mk/tooling.mk
include mk/sdk.mk
-include mk/bench.mk

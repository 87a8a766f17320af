# mk/bench.mk: Latch's benchmarks (issue 7). Included from the top-level
# Makefile. Targets:
#
#   bench        build and start latchd, drive every scenario against it and
#                against the HTTP and password floors, print the table
#                (about 4 minutes on 2 cores; SQLite in a temp dir). Then
#                the two-instance scenarios (refresh-x2, me-x2): two latchd
#                on one fresh PostgreSQL database, each worker's requests
#                alternating between them; on -db's server, or -pg's when
#                -db is SQLite (default $LATCH_TEST_POSTGRES_URL or
#                postgres://postgres@127.0.0.1:5432/postgres). Without a
#                reachable PostgreSQL they are reported NOT RUN (table,
#                targets, stdout, stderr), never measured on anything else.
#   bench-micro  the Go micro-benchmarks of every package, benchstat-ready
#
# Variables: BENCH_FLAGS passes flags to cmd/latchbench, for example
#   make bench BENCH_FLAGS='-db postgres://postgres@127.0.0.1:5432/postgres -json .ci/out/bench-pg.json'
#   make bench BENCH_FLAGS='-seed-large'   (adds 1M users / 5M sessions, several minutes more)
#   make bench BENCH_FLAGS='-db postgres://postgres@127.0.0.1:5432/postgres -scenarios floor-http,refresh,me,refresh-x2,me-x2'
#                (one instance against two on the same PostgreSQL server)
#   make bench BENCH_FLAGS='-pg postgres://user@dbhost:5432/postgres'   (where the two-instance scenarios run)
# BENCH_COUNT and BENCH_TIME tune bench-micro (go test -count, -benchtime);
# compare two runs with benchstat (golang.org/x/perf/cmd/benchstat).

GO ?= go
BENCH_FLAGS ?=
BENCH_COUNT ?= 1
BENCH_TIME ?= 1s

.PHONY: bench bench-micro

## bench: the load benchmark against latchd and the machine's floors (fails on >0.1% errors)
bench:
	$(GO) run ./cmd/latchbench $(BENCH_FLAGS)

## bench-micro: go test -bench . -run ^$ ./... (token signing/verification, API keys, refresh rotation, hashing)
bench-micro:
	$(GO) test -bench . -run '^$$' -count $(BENCH_COUNT) -benchtime $(BENCH_TIME) ./...

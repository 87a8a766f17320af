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
#   bench-compare  release against release (issue 26): latchbench -base
#                builds latchd at BASE (git archive into a temp dir; the
#                repository is left as it is) and at the working tree, runs
#                each scenario on the two in turn for ROUNDS rounds (base
#                first in odd rounds, new first in even ones; each run its
#                own latchd and fresh database, as `bench` does), and prints
#                per scenario both means, the ratio new/base and the spread
#                of the per-round ratios. A scenario the base does not serve
#                is reported NOT RUN. BENCH_FLAGS passes the run's flags:
#   make bench-compare BASE=379acdc ROUNDS=3 BENCH_FLAGS='-db postgres://postgres@127.0.0.1:5432/postgres -scenarios floor-http,refresh,me'
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
BASE ?=
ROUNDS ?= 3

.PHONY: bench bench-compare bench-micro

## bench: the load benchmark against latchd and the machine's floors (fails on >0.1% errors)
bench:
	$(GO) run ./cmd/latchbench $(BENCH_FLAGS)

## bench-compare: BASE=<commit> [ROUNDS=3]: each scenario on latchd at BASE and at the working tree, interleaved; ratio and spread
bench-compare:
	@test -n "$(BASE)" || { echo 'usage: make bench-compare BASE=<commit> [ROUNDS=3] [BENCH_FLAGS=...]' >&2; exit 2; }
	$(GO) run ./cmd/latchbench -base '$(BASE)' -rounds $(ROUNDS) $(BENCH_FLAGS)

## bench-micro: go test -bench . -run ^$ ./... (token signing/verification, API keys, refresh rotation, hashing)
bench-micro:
	$(GO) test -bench . -run '^$$' -count $(BENCH_COUNT) -benchtime $(BENCH_TIME) ./...

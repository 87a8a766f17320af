package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// defaultPG is the PostgreSQL server of the two-instance scenarios when -db
// is SQLite: the tests' server.
func defaultPG() string {
	if u := os.Getenv("LATCH_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres"
}

// twoInstances runs the wanted two-instance scenarios: two latchd, one
// issuer and master key, on one fresh PostgreSQL database, each worker's
// requests alternating between them. Server CPU is both instances'
// together, so it compares with a single instance's per request.
//
// When no PostgreSQL answers, the scenarios are recorded as not run (a
// skipped row, a failed target, a NOT RUN line on stdout and stderr), and
// twoInstances returns nil: the rest of the run stands. Any other failure
// is returned.
func (b *bench) twoInstances(ctx context.Context, want map[string]bool) error {
	var names []string
	for _, s := range twoInstanceScenarios {
		if want[s] {
			names = append(names, s)
		}
	}
	if len(names) == 0 {
		return nil
	}
	server := b.o.pg
	if b.dialect == "postgres" {
		server = b.o.db
	}
	pg, err := b.createPostgres(ctx, server, "latchbench_"+b.run+"_x2")
	if err != nil {
		b.notRun = fmt.Sprintf("%s: no PostgreSQL to run two instances on (%v); pass -pg postgres://... or start one", strings.Join(names, ", "), err)
		fmt.Fprintf(b.stderr, "latchbench: NOT RUN: %s\n", b.notRun)
		for _, s := range names {
			b.add(Row{Scenario: s, Concurrency: b.o.conc, Floor: "http", Skipped: "NOT RUN: no PostgreSQL reachable"})
		}
		return nil
	}
	if !b.o.keepDB {
		defer pg.drop()
	}
	dbURL := pg.url

	// The first instance creates the signing key; the second loads it.
	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	var issuer string
	for i := range 2 {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		if issuer == "" {
			issuer = "http://" + addr
		}
		env := append(b.latchdEnv(addr, issuer, dbURL), b.o.extraEnv...)
		b.logf("starting latchd %d of 2 on %s (postgres)", i+1, addr)
		p, err := startProc(ctx, fmt.Sprintf("latchd %d of 2", i+1), addr, b.bin, []string{"serve"}, env,
			filepath.Join(b.tmp, fmt.Sprintf("latchd-x2-%d.log", i)), "/health/ready")
		if err != nil {
			return err
		}
		procs = append(procs, p)
	}
	hs := make([]*httpc, len(procs))
	pids := make([]int, len(procs))
	for i, p := range procs {
		hs[i] = newHTTPC(p.url(), b.o.conc)
		defer hs[i].close()
		pids[i] = p.pid()
	}
	accts, err := seedAccounts(ctx, hs[0], b.run+"-x2", b.o.conc)
	if err != nil {
		return fmt.Errorf("two instances: seed accounts: %w", err)
	}
	for _, s := range names {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		pg.checkpoint(ctx)
		f := refreshOp(hs, accts)
		if s == "me-x2" {
			f = meOp(hs, accts)
		}
		r, err := b.measureAll(ctx, s, b.o.conc, pids, pg, nil, f)
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		r.Floor = "http"
		r.Note = "two latchd on one PostgreSQL database, each worker alternating between them"
		if s == "refresh-x2" {
			r.Note += " (every refresh chain crosses instances)"
		}
		r.Note += "; server CPU is both instances', peak RSS the larger one's"
		b.add(r)
	}
	return nil
}

// twoInstanceChecks adds the targets of the two-instance scenarios: that
// they ran at all (a run without PostgreSQL says so in its targets).
func (b *bench) twoInstanceChecks(add func(what, got string, met bool)) {
	for _, r := range b.report.Rows {
		if slices.Contains(twoInstanceScenarios, r.Scenario) {
			got := fmt.Sprintf("%d requests", r.Requests)
			if r.Skipped != "" {
				got = r.Skipped
			}
			add(r.Scenario+" ran on two instances and PostgreSQL", got, r.Skipped == "" && r.Requests > 0)
		}
	}
}

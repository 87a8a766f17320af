package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchauth/latch/internal/testutil"
)

func readReport(t *testing.T, path string) Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestTwoInstancesNotRunWithoutPostgres: with no PostgreSQL to run on, the
// two-instance scenarios are reported as not run (in the rows, the targets,
// stdout and stderr), with no numbers, and nothing else stands in for them.
func TestTwoInstancesNotRunWithoutPostgres(t *testing.T) {
	out := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	// Port 1 on loopback: nothing listens there. -latchd is never run.
	code := Main([]string{"-scenarios", "refresh-x2,me-x2", "-pg", "postgres://postgres@127.0.0.1:1/postgres",
		"-latchd", "/nonexistent/latchd", "-json", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	for name, s := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String()} {
		if !strings.Contains(s, "NOT RUN: refresh-x2, me-x2") {
			t.Fatalf("%s does not say the scenarios did not run:\n%s", name, s)
		}
	}
	r := readReport(t, out)
	if len(r.Rows) != 2 {
		t.Fatalf("rows %+v", r.Rows)
	}
	for _, row := range r.Rows {
		if row.Skipped == "" || row.Requests != 0 || row.RPS != 0 {
			t.Fatalf("a scenario that did not run has numbers: %+v", row)
		}
	}
	met := 0
	for _, c := range r.Checks {
		if strings.Contains(c.What, "ran on two instances") {
			if c.Met != "no" {
				t.Fatalf("target met without running: %+v", c)
			}
			met++
		}
	}
	if met != 2 {
		t.Fatalf("checks %+v", r.Checks)
	}
}

// TestTwoInstancesOnPostgres runs the two-instance scenarios briefly on the
// test PostgreSQL: two latchd serve refreshes whose chains cross from one
// to the other, and /auth/me, without an error.
func TestTwoInstancesOnPostgres(t *testing.T) {
	testutil.DatabaseURL(t, "postgres") // PostgreSQL is there (or the test says loudly why not)
	out := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	code := Main([]string{"-scenarios", "refresh-x2,me-x2", "-pg", testutil.PostgresURL(),
		"-c", "4", "-warmup", "200ms", "-duration", "500ms", "-hash-max-wait", "10s",
		"-json", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if strings.Contains(stdout.String(), "NOT RUN") {
		t.Fatalf("not run:\n%s", stdout.String())
	}
	r := readReport(t, out)
	seen := map[string]bool{}
	for _, row := range r.Rows {
		seen[row.Scenario] = true
		if row.Skipped != "" || row.Requests == 0 || row.Errors != 0 || row.ServerCPUus <= 0 {
			t.Fatalf("%s: %+v", row.Scenario, row)
		}
	}
	if !seen["refresh-x2"] || !seen["me-x2"] {
		t.Fatalf("rows %+v", r.Rows)
	}
}

// TestNextAlternatesInstances: each worker's requests go round the
// instances, starting at a different one per worker.
func TestNextAlternatesInstances(t *testing.T) {
	hs := []*httpc{{base: "a"}, {base: "b"}}
	for id, want := range map[int]string{0: "ababab", 1: "bababa"} {
		w := &worker{id: id}
		got := ""
		for range 6 {
			got += next(hs, w).base
		}
		if got != want {
			t.Fatalf("worker %d went to %s, want %s", id, got, want)
		}
	}
	w := &worker{id: 3}
	if next(hs[:1], w).base != "a" || w.turn != 0 {
		t.Fatal("one instance")
	}
}

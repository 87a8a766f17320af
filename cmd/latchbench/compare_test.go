package main

import (
	"archive/tar"
	"bytes"
	"math"
	"strings"
	"testing"
)

// run is a canned run: rps 0 means not run, for why.
func run(scenario string, round int, side string, rps, cpu float64, why string) CompareRun {
	r := CompareRun{Scenario: scenario, Round: round, Side: side}
	if rps == 0 {
		r.NotRun = why
		return r
	}
	r.Row = &Row{Scenario: scenario, RPS: rps, ServerCPUus: cpu}
	return r
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// squeeze returns the printed comparison with each run of blanks made one
// space, so the table's padding does not matter.
func squeeze(c *Comparison) string {
	var out bytes.Buffer
	printComparison(&out, c)
	lines := strings.Split(out.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

// TestSummarize: the means are over the rounds both sides ran, the ratio is
// the means' and lies inside the spread of the per-round ratios, and a
// round a side did not run is left out and said.
func TestSummarize(t *testing.T) {
	runs := []CompareRun{
		run("me", 1, sideBase, 1000, 30, ""),
		run("me", 1, sideNew, 1100, 27, ""),
		run("me", 2, sideNew, 900, 33, ""),
		run("me", 2, sideBase, 1000, 32, ""),
		run("me", 3, sideBase, 0, 0, "failed: latchd exited"),
		run("me", 3, sideNew, 5000, 1, ""),
		// Another scenario's runs do not count.
		run("refresh", 1, sideBase, 10, 100, ""),
		run("refresh", 1, sideNew, 20, 100, ""),
	}
	c := summarize("me", runs)
	if c.Rounds != 2 {
		t.Fatalf("rounds %d, want 2 (round 3 has no base): %+v", c.Rounds, c)
	}
	if !near(c.BaseRPS, 1000) || !near(c.NewRPS, 1000) || !near(c.Ratio, 1) {
		t.Fatalf("means %+v", c)
	}
	if !near(c.RatioMin, 0.9) || !near(c.RatioMax, 1.1) {
		t.Fatalf("spread %v-%v, want 0.9-1.1", c.RatioMin, c.RatioMax)
	}
	if !near(c.BaseCPUus, 31) || !near(c.NewCPUus, 30) {
		t.Fatalf("cpu %+v", c)
	}
	if c.NotRun != "base: failed: latchd exited" {
		t.Fatalf("not run %q", c.NotRun)
	}

	// Unequal rounds: the ratio of the means weights each round's ratio by
	// the base's throughput.
	c = summarize("refresh", []CompareRun{
		run("refresh", 1, sideBase, 100, 0, ""), run("refresh", 1, sideNew, 200, 0, ""),
		run("refresh", 2, sideNew, 300, 0, ""), run("refresh", 2, sideBase, 300, 0, ""),
	})
	if !near(c.Ratio, 500.0/400) || !near(c.RatioMin, 1) || !near(c.RatioMax, 2) || c.NotRun != "" {
		t.Fatalf("%+v", c)
	}
}

// TestSummarizeUnavailableOnBase: a scenario the base does not serve has no
// comparison, one reason however many rounds said it, and prints as NOT
// RUN without numbers.
func TestSummarizeUnavailableOnBase(t *testing.T) {
	why := errUnavailable.Error()
	var runs []CompareRun
	for round := 1; round <= 3; round++ {
		runs = append(runs, run("exchange", round, sideBase, 0, 0, why), run("exchange", round, sideNew, 4000, 50, ""))
	}
	c := summarize("exchange", runs)
	if c.Rounds != 0 || c.Ratio != 0 || c.BaseRPS != 0 || c.NewRPS != 0 || c.RatioMin != 0 || c.RatioMax != 0 {
		t.Fatalf("numbers without a comparison: %+v", c)
	}
	if c.NotRun != "base: "+why {
		t.Fatalf("not run %q", c.NotRun)
	}
	s := squeeze(&Comparison{Base: "v1", BaseCommit: "0123456789abcdef", Rounds: 3, Settings: map[string]any{}, Rows: []CompareRow{c}})
	if !strings.Contains(s, "| exchange| 0| -| -| NOT RUN|") || !strings.Contains(s, "- exchange NOT RUN in some rounds: base: "+why+" (no comparison)") {
		t.Fatalf("table:\n%s", s)
	}
	if strings.Contains(s, "4000") {
		t.Fatalf("the new side's number is printed without a comparison:\n%s", s)
	}
}

// TestPrintComparison: one line per scenario with both means, the ratio
// and its change in percent, the spread and the CPU per request.
func TestPrintComparison(t *testing.T) {
	c := &Comparison{Base: "v1", BaseCommit: "0123456789abcdef", New: "working tree", Rounds: 2, Settings: map[string]any{"db": "sqlite"},
		Rows: []CompareRow{
			summarize("me", []CompareRun{
				run("me", 1, sideBase, 30000, 29, ""), run("me", 1, sideNew, 36000, 24, ""),
				run("me", 2, sideNew, 33000, 25, ""), run("me", 2, sideBase, 30000, 29, ""),
			}),
		}}
	s := squeeze(c)
	for _, want := range []string{
		"-base v1 (0123456789ab) against working tree: 2 rounds",
		"| me| 2| 30000| 34500| 1.150 (+15.0%)| 1.100-1.200| 29.0| 24.5|",
	} {
		if !strings.Contains(s, want) {
			t.Fatalf("no %q in:\n%s", want, s)
		}
	}
}

// TestOrderAlternates: base goes first in odd rounds, new in even ones.
func TestOrderAlternates(t *testing.T) {
	got := ""
	for round := 1; round <= 4; round++ {
		o := order(round)
		got += o[0][:1] + o[1][:1] + " "
	}
	if got != "bn nb bn nb " {
		t.Fatalf("order %q", got)
	}
}

// TestUntarStaysInside: an archive entry that would leave the directory is
// refused.
func TestUntarStaysInside(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	if err := untar(&buf, t.TempDir()); err == nil {
		t.Fatal("untar wrote outside its directory")
	}
}

// TestCompareFlags: -base refuses what it cannot honour, and a base that
// is not a commit, before building anything.
func TestCompareFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-base", "HEAD", "-rounds", "0"},
		{"-base", "HEAD", "-profile-dir", t.TempDir()},
		{"-base", "no-such-commit-latchbench"},
	} {
		var stdout, stderr bytes.Buffer
		if code := Main(args, &stdout, &stderr); code != 2 {
			t.Fatalf("%v: exit %d, want 2; stderr:\n%s", args, code, stderr.String())
		}
	}
}

func TestLatchdEnvTakesLatchAndRuntimeVariablesOnly(t *testing.T) {
	var got []string
	f := envFlag{&got}
	for _, ok := range []string{"LATCH_LOG_LEVEL=info", "GOMAXPROCS=1", "GOGC=200", "GOMEMLIMIT=1GiB"} {
		if err := f.Set(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"PATH=/tmp", "LATCH_NOVALUE", "GODEBUG=x=1"} {
		if err := f.Set(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if len(got) != 4 {
		t.Fatalf("kept %v", got)
	}
}

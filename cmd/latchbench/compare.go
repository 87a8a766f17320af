package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// The release-to-release comparison (issue 26, `make bench-compare`): with
// -base, latchbench builds latchd at an earlier commit and at the working
// tree, and for each scenario runs the two in turn for -rounds rounds, each
// run exactly as a plain latchbench run of that one scenario (its own
// latchd, a fresh database, the same load generator, this one). It prints,
// per scenario, the mean of each side, the ratio new/base and the spread of
// the per-round ratios.

// Sides of a comparison.
const (
	sideBase = "base"
	sideNew  = "new"
)

// CompareRun is one run of one scenario on one side.
type CompareRun struct {
	Scenario string `json:"scenario"`
	Round    int    `json:"round"`
	Side     string `json:"side"`
	// Row is the run's measurement; nil when NotRun says why there is none.
	Row    *Row   `json:"row,omitempty"`
	NotRun string `json:"not_run,omitempty"`
}

// CompareRow is one scenario's comparison over the rounds in which both
// sides ran.
type CompareRow struct {
	Scenario string `json:"scenario"`
	// Rounds is the number of rounds in which both sides ran.
	Rounds  int     `json:"rounds"`
	BaseRPS float64 `json:"base_rps"`
	NewRPS  float64 `json:"new_rps"`
	// Ratio is NewRPS / BaseRPS: the per-round ratios weighted by the
	// base's throughput, so it lies between RatioMin and RatioMax.
	Ratio    float64 `json:"ratio"`
	RatioMin float64 `json:"ratio_min"`
	RatioMax float64 `json:"ratio_max"`
	// BaseCPUus and NewCPUus are the mean server CPU microseconds per
	// request.
	BaseCPUus float64 `json:"base_server_cpu_us_per_req"`
	NewCPUus  float64 `json:"new_server_cpu_us_per_req"`
	// NotRun says why a side did not run in some round ("" when both ran in
	// every round); with Rounds 0 there is no comparison.
	NotRun string `json:"not_run,omitempty"`
}

// Comparison is the whole comparison, as -json writes it with -base.
type Comparison struct {
	Started    time.Time      `json:"started"`
	Machine    Machine        `json:"machine"`
	Base       string         `json:"base"`
	BaseCommit string         `json:"base_commit"`
	New        string         `json:"new"`
	Rounds     int            `json:"rounds"`
	Settings   map[string]any `json:"settings"`
	Rows       []CompareRow   `json:"rows"`
	Runs       []CompareRun   `json:"runs"`
	// Failed is true when a run failed for another reason than a scenario
	// the build does not serve (a crash, errors above the budget).
	Failed bool `json:"failed"`
}

// order returns the sides in round's order: base first in odd rounds, new
// first in even ones, so that a drift of the machine over the rounds (a
// neighbour starting, the CPU warming) weighs on both sides alike.
func order(round int) [2]string {
	if round%2 == 1 {
		return [2]string{sideBase, sideNew}
	}
	return [2]string{sideNew, sideBase}
}

// summarize compares scenario's runs: the rounds in which both sides have
// a measured row make the means and the per-round ratios; the reasons of
// the others are kept in NotRun.
func summarize(scenario string, runs []CompareRun) CompareRow {
	c := CompareRow{Scenario: scenario, RatioMin: math.Inf(1), RatioMax: math.Inf(-1)}
	type pair struct{ base, new *Row }
	rounds := map[int]*pair{}
	var maxRound int
	var why []string
	for _, r := range runs {
		if r.Scenario != scenario {
			continue
		}
		maxRound = max(maxRound, r.Round)
		if r.Row == nil {
			why = appendOnce(why, r.Side+": "+r.NotRun)
			continue
		}
		p := rounds[r.Round]
		if p == nil {
			p = &pair{}
			rounds[r.Round] = p
		}
		if r.Side == sideBase {
			p.base = r.Row
		} else {
			p.new = r.Row
		}
	}
	for round := 1; round <= maxRound; round++ {
		p := rounds[round]
		if p == nil || p.base == nil || p.new == nil || p.base.RPS <= 0 {
			continue
		}
		c.Rounds++
		c.BaseRPS += p.base.RPS
		c.NewRPS += p.new.RPS
		c.BaseCPUus += p.base.ServerCPUus
		c.NewCPUus += p.new.ServerCPUus
		q := p.new.RPS / p.base.RPS
		c.RatioMin, c.RatioMax = min(c.RatioMin, q), max(c.RatioMax, q)
	}
	c.NotRun = strings.Join(why, "; ")
	if c.Rounds == 0 {
		c.RatioMin, c.RatioMax = 0, 0
		if c.NotRun == "" {
			c.NotRun = "no round ran"
		}
		return c
	}
	n := float64(c.Rounds)
	c.BaseRPS, c.NewRPS, c.BaseCPUus, c.NewCPUus = c.BaseRPS/n, c.NewRPS/n, c.BaseCPUus/n, c.NewCPUus/n
	c.Ratio = c.NewRPS / c.BaseRPS
	return c
}

func appendOnce(l []string, s string) []string {
	for _, x := range l {
		if x == s {
			return l
		}
	}
	return append(l, s)
}

// printComparison writes the comparison as a Markdown table.
func printComparison(w io.Writer, c *Comparison) {
	fmt.Fprintf(w, "\nlatchbench -base %s (%s) against %s: %d rounds, sides alternating (base first in odd rounds); %s, %d CPUs (%s), %s; load average %s at start, %s at end\n",
		c.Base, shortCommit(c.BaseCommit), c.New, c.Rounds, c.Settings["db"], c.Machine.CPUs, c.Machine.CPUModel, c.Machine.Go, c.Machine.LoadStart, c.Machine.LoadEnd)
	fmt.Fprintf(w, "each run: one scenario, its own latchd and fresh database, %v warm-up, %v measured, %v connections; req/s and server CPU are means over the rounds both sides ran; spread: lowest and highest per-round ratio\n\n",
		c.Settings["warmup"], c.Settings["duration"], c.Settings["connections"])
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "\tscenario\trounds\tbase req/s\tnew req/s\tnew/base\tspread\tbase CPU µs/req\tnew CPU µs/req\t")
	fmt.Fprintln(tw, "\t---\t---\t---\t---\t---\t---\t---\t---\t")
	for _, r := range c.Rows {
		if r.Rounds == 0 {
			fmt.Fprintf(tw, "\t%s\t0\t-\t-\tNOT RUN\t-\t-\t-\t\n", r.Scenario)
			continue
		}
		fmt.Fprintf(tw, "\t%s\t%d\t%.0f\t%.0f\t%.3f (%+.1f%%)\t%.3f-%.3f\t%.1f\t%.1f\t\n",
			r.Scenario, r.Rounds, r.BaseRPS, r.NewRPS, r.Ratio, 100*(r.Ratio-1), r.RatioMin, r.RatioMax, r.BaseCPUus, r.NewCPUus)
	}
	tw.Flush()
	for _, r := range c.Rows {
		if r.NotRun != "" {
			fmt.Fprintf(w, "\n- %s NOT RUN in some rounds: %s", r.Scenario, r.NotRun)
			if r.Rounds == 0 {
				fmt.Fprintf(w, " (no comparison)")
			}
		}
	}
	fmt.Fprintln(w)
}

// dialectOf names the database of -db without its URL, which may carry a
// password.
func dialectOf(db string) string {
	if strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
		return "postgres"
	}
	return "sqlite"
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// compare runs the comparison that o describes (o.base is set) and returns
// the exit code: 0 when every run either measured or reported its scenario
// unavailable, 1 when a run failed or a scenario's errors exceeded the
// budget, 2 on a wrong command line.
func compare(ctx context.Context, o options, stdout, stderr io.Writer) int {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "latchbench: "+format+"\n", args...) }
	tmp, err := os.MkdirTemp("", "latchbench-compare-")
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	mod, err := moduleDir(ctx)
	if err != nil {
		logf("-base: %v", err)
		return 1
	}
	commit, err := git(ctx, mod, "rev-parse", "--verify", "--quiet", o.base+"^{commit}")
	if err != nil {
		logf("-base %s: not a commit of %s", o.base, mod)
		return 2
	}
	logf("building latchd at %s (%s)", o.base, shortCommit(commit))
	baseBin, err := buildAt(ctx, mod, commit, filepath.Join(tmp, "base"))
	if err != nil {
		logf("%v", err)
		return 1
	}
	newBin, newName := o.latchd, o.latchd
	if newBin == "" {
		newName = "working tree"
		logf("building latchd of the working tree")
		if newBin, err = goBuildLatchd(ctx, mod, filepath.Join(tmp, "latchd-new")); err != nil {
			logf("%v", err)
			return 1
		}
	}
	c := &Comparison{Started: time.Now().UTC(), Machine: readMachine(), Base: o.base, BaseCommit: commit, New: newName, Rounds: o.rounds,
		Settings: map[string]any{"db": dialectOf(o.db), "duration": o.duration.String(), "warmup": o.warmup.String(), "connections": o.conc}}
	bins := map[string]string{sideBase: baseBin, sideNew: newBin}
	var scenarios []string
	for _, s := range strings.Split(o.scenarios, ",") {
		scenarios = append(scenarios, strings.TrimSpace(s))
	}
	for _, s := range scenarios {
		for round := 1; round <= o.rounds; round++ {
			for _, side := range order(round) {
				if ctx.Err() != nil {
					logf("%v", ctx.Err())
					return 1
				}
				run := runSide(ctx, o, s, bins[side], stderr)
				run.Round, run.Side = round, side
				if run.Row != nil {
					logf("%s round %d/%d %s: %.0f req/s, %.1f µs server CPU/req", s, round, o.rounds, side, run.Row.RPS, run.Row.ServerCPUus)
				} else {
					logf("%s round %d/%d %s: NOT RUN: %s", s, round, o.rounds, side, run.NotRun)
				}
				c.Failed = c.Failed || run.failed
				c.Runs = append(c.Runs, run.CompareRun)
			}
		}
		c.Rows = append(c.Rows, summarize(s, c.Runs))
	}
	c.Machine.LoadEnd = loadavg()
	printComparison(stdout, c)
	if o.jsonPath != "" {
		if err := writeJSON(o.jsonPath, c); err != nil {
			logf("%v", err)
			return 1
		}
	}
	if c.Failed {
		fmt.Fprintln(stdout, "\nFAIL: a run failed or its errors exceeded the budget (see NOT RUN)")
		return 1
	}
	return 0
}

type sideRun struct {
	CompareRun
	// failed is set when the run failed for another reason than an
	// unavailable scenario.
	failed bool
}

// runSide runs scenario once against the latchd binary bin, as a plain run
// with -latchd bin -scenarios scenario would, and returns its row or why
// there is none.
func runSide(ctx context.Context, o options, scenario, bin string, stderr io.Writer) sideRun {
	o.latchd, o.scenarios, o.jsonPath, o.base = bin, scenario, "", ""
	r := sideRun{CompareRun: CompareRun{Scenario: scenario}}
	// Each run starts from a collected heap, as a new process would.
	runtime.GC()
	b := &bench{o: o, stderr: stderr, floors: map[string]float64{}, rows: map[string]int{}}
	var out bytes.Buffer
	code, err := b.main(ctx, &out)
	b.cleanup()
	if o.verbose {
		_, _ = stderr.Write(out.Bytes())
	}
	var row *Row
	if b.report != nil {
		row = b.row(scenario)
	}
	switch {
	case err != nil:
		r.NotRun, r.failed = "failed: "+err.Error(), true
	case row == nil:
		r.NotRun, r.failed = fmt.Sprintf("no row (exit %d)", code), true
	case row.Skipped != "":
		r.NotRun = row.Skipped
	case row.ErrorRate > o.errorBudget:
		r.NotRun, r.failed = fmt.Sprintf("errors %d of %d requests, above the budget", row.Errors, row.Requests), true
	default:
		r.Row = row
	}
	return r
}

// buildAt builds latchd from the tree of commit in the repository at repo,
// extracted with git archive into dir (the repository and its worktrees are
// left as they are), and returns the binary's path.
func buildAt(ctx context.Context, repo, commit, dir string) (string, error) {
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "git", "-C", repo, "archive", "--format=tar", commit)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	xerr := untar(pipe, src)
	_, _ = io.Copy(io.Discard, pipe)
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("git archive %s: %w: %s", commit, err, strings.TrimSpace(errb.String()))
	}
	if xerr != nil {
		return "", fmt.Errorf("git archive %s: %w", commit, xerr)
	}
	return goBuildLatchd(ctx, src, filepath.Join(dir, "latchd"))
}

// untar extracts the directories, files and symbolic links of a tar stream
// into dir; a name that would leave dir is an error.
func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !filepath.IsLocal(h.Name) {
			return fmt.Errorf("archive entry %q leaves the directory", h.Name)
		}
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			err = writeFile(p, tr, os.FileMode(h.Mode)&0o777)
		case tar.TypeSymlink:
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				err = os.Symlink(h.Linkname, p)
			}
		}
		if err != nil {
			return err
		}
	}
}

func writeFile(p string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode|0o200)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	return errors.Join(err, f.Close())
}

// git runs git in dir and returns its trimmed output.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...).Output()
	return strings.TrimSpace(string(out)), err
}

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one scenario's measurement.
type Row struct {
	Scenario    string  `json:"scenario"`
	Concurrency int     `json:"concurrency"`
	Requests    int     `json:"requests"`
	Seconds     float64 `json:"seconds"`
	RPS         float64 `json:"rps"`
	P50ms       float64 `json:"p50_ms"`
	P90ms       float64 `json:"p90_ms"`
	P99ms       float64 `json:"p99_ms"`
	Errors      int     `json:"errors"`
	ErrorRate   float64 `json:"error_rate"`
	Status5xx   int     `json:"status_5xx"`
	// ErrorStatuses counts unexpected statuses (0: transport error).
	ErrorStatuses map[string]int `json:"error_statuses,omitempty"`
	// ServerCPUus is server (or, for in-process scenarios, benchmark
	// process) CPU microseconds per request.
	ServerCPUus float64 `json:"server_cpu_us_per_req"`
	// ClientCPUus is the load generator's (this process's) CPU
	// microseconds per request, which shares the machine with the server.
	ClientCPUus float64 `json:"client_cpu_us_per_req"`
	// OtherCores is the CPU that processes other than latchd (or the
	// floor server) and the benchmark used during the measured window, in
	// cores: other work on a shared machine, and the database server.
	OtherCores    float64 `json:"other_cores"`
	ServerPeakMiB float64 `json:"server_peak_rss_mib"`
	Floor         string  `json:"floor,omitempty"`
	Ratio         float64 `json:"ratio,omitempty"`
	Target        float64 `json:"target,omitempty"`
	// Met is "yes", "no" or "" when the scenario has no target.
	Met     string `json:"met,omitempty"`
	Skipped string `json:"skipped,omitempty"`
	Note    string `json:"note,omitempty"`
}

// Report is the whole run, as -json writes it.
type Report struct {
	Started     time.Time      `json:"started"`
	Machine     Machine        `json:"machine"`
	Settings    map[string]any `json:"settings"`
	Rows        []Row          `json:"rows"`
	Large       []LargeRow     `json:"large_db,omitempty"`
	LargeSeed   *SeedStats     `json:"large_seed,omitempty"`
	Checks      []Check        `json:"checks"`
	ErrorBudget float64        `json:"error_budget"`
	Failed      bool           `json:"failed"`
}

// LargeRow compares a scenario on the small database with the same scenario
// after -seed-large.
type LargeRow struct {
	Scenario string  `json:"scenario"`
	SmallRPS float64 `json:"small_rps"`
	LargeRPS float64 `json:"large_rps"`
	Ratio    float64 `json:"ratio"`
	LargeP99 float64 `json:"large_p99_ms"`
	Met      string  `json:"met"`
}

// Check is one target of issue 7 and whether this run met it.
type Check struct {
	What string `json:"what"`
	Got  string `json:"got"`
	Met  string `json:"met"`
}

// Machine describes where the run happened.
type Machine struct {
	Hostname  string `json:"hostname"`
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	MemTotal  string `json:"mem_total"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
}

func readMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	m.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		l, _, _ := strings.Cut(string(b), "\n")
		m.MemTotal = strings.Join(strings.Fields(strings.TrimPrefix(l, "MemTotal:")), " ")
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.LoadStart = loadavg()
	return m
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// printTable writes the rows as a Markdown table (which also reads well in
// a terminal).
func printTable(w io.Writer, r *Report) {
	fmt.Fprintf(w, "\nlatchbench: %s, %d CPUs (%s), %s, %s; load average %s at start, %s at end\n",
		r.Settings["db"], r.Machine.CPUs, r.Machine.CPUModel, r.Machine.MemTotal, r.Machine.Go, r.Machine.LoadStart, r.Machine.LoadEnd)
	fmt.Fprintf(w, "each scenario: %v warm-up, then %v measured, closed loop on loopback; other cores: CPU used by everything but the server under test and the benchmark\n\n", r.Settings["warmup"], r.Settings["duration"])
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "\tscenario\tconns\treq/s\tp50 ms\tp90 ms\tp99 ms\terrors\tsrv CPU µs/req\tpeak RSS MiB\tother cores\tfloor\tratio\ttarget\tmet\t")
	fmt.Fprintln(tw, "\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t")
	for _, row := range r.Rows {
		if row.Skipped != "" {
			fmt.Fprintf(tw, "\t%s\t%d\t-\t-\t-\t-\t-\t-\t-\t-\t%s\t-\t%s\tskipped\t\n", row.Scenario, row.Concurrency, dash(row.Floor), target(row.Target))
			continue
		}
		fmt.Fprintf(tw, "\t%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t%.0f\t%.0f\t%.2f\t%s\t%s\t%s\t%s\t\n",
			row.Scenario, row.Concurrency, row.RPS, row.P50ms, row.P90ms, row.P99ms, row.Errors,
			row.ServerCPUus, row.ServerPeakMiB, row.OtherCores, dash(row.Floor), ratio(row.Ratio, row.Floor), target(row.Target), dash(row.Met))
	}
	tw.Flush()
	for _, row := range r.Rows {
		if row.Skipped != "" {
			fmt.Fprintf(w, "\n- %s skipped: %s", row.Scenario, row.Skipped)
		}
		if row.Note != "" {
			fmt.Fprintf(w, "\n- %s: %s", row.Scenario, row.Note)
		}
	}
	fmt.Fprintln(w)
	if len(r.Large) > 0 {
		fmt.Fprintf(w, "\nlarge database (%s)\n\n", r.LargeSeed)
		tw = tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight|tabwriter.Debug)
		fmt.Fprintln(tw, "\tscenario\tsmall req/s\tlarge req/s\tlarge/small\tlarge p99 ms\tmet (>= 0.80)\t")
		fmt.Fprintln(tw, "\t---\t---\t---\t---\t---\t---\t")
		for _, l := range r.Large {
			fmt.Fprintf(tw, "\t%s\t%.0f\t%.0f\t%.2f\t%.2f\t%s\t\n", l.Scenario, l.SmallRPS, l.LargeRPS, l.Ratio, l.LargeP99, l.Met)
		}
		tw.Flush()
	}
	if len(r.Checks) > 0 {
		fmt.Fprintf(w, "\ntargets\n\n")
		tw = tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
		fmt.Fprintln(tw, "\ttarget\tthis run\tmet\t")
		fmt.Fprintln(tw, "\t---\t---\t---\t")
		for _, c := range r.Checks {
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t\n", c.What, c.Got, c.Met)
		}
		tw.Flush()
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ratio(r float64, floor string) string {
	if floor == "" || floor == "-" || r == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", r)
}

func target(t float64) string {
	if t == 0 {
		return "-"
	}
	return fmt.Sprintf(">= %.2f", t)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func writeJSON(path string, r any) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

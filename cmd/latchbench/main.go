// Command latchbench is Latch's load benchmark (issue 7, `make bench`).
//
// It builds and starts latchd itself (SQLite in a temporary directory by
// default, or a fresh database on the PostgreSQL server that -db names),
// seeds accounts and API keys over the API, and drives each scenario from a
// closed loop of -c workers on loopback for a fixed time, bounded in count
// too. Beside the scenarios it measures two floors in the same run, with the
// same load generator: a bare net/http handler in its own process (the HTTP
// floor) and raw argon2id hashing with Latch's parameters at its hashing
// concurrency (the password floor). Per scenario it reports requests/s,
// latency percentiles, errors, server CPU per request (from
// /proc/<pid>/stat), peak server RSS, and the ratio to the floor; as a
// table, and as JSON with -json. A run fails (exit 1) when a scenario's
// errors exceed 0.1% of its requests.
//
// The two-instance scenarios (refresh-x2, me-x2) start two latchd on one
// fresh PostgreSQL database (on -db's server, or -pg's when -db is SQLite)
// and alternate each worker's requests between them. When no PostgreSQL
// answers they are reported as not run, in the table, the targets and on
// stderr; they never fall back to anything else.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/lib/pq"

	"github.com/latchauth/latch/internal/password"
)

func main() { os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr)) }

// options are the command line.
type options struct {
	db             string
	keepDB         bool
	latchd         string
	duration       time.Duration
	warmup         time.Duration
	conc           int
	burstConc      int
	maxRequests    int
	scenarios      string
	jsonPath       string
	hashConc       int
	hashWait       time.Duration
	argon          password.Params
	dbMaxConns     int
	pprof          bool
	profileDir     string
	seedLarge      bool
	largeUsers     int
	largeSessions  int
	largeBatch     int
	errorBudget    float64
	apiKeyReadPath string
	extraEnv       []string
	verbose        bool
	// pg is the PostgreSQL server of the two-instance scenarios when db is
	// SQLite.
	pg string
	// base, when set, makes the run a comparison of latchd built at this
	// commit with the working tree's (or -latchd), rounds times per
	// scenario (compare.go).
	base   string
	rounds int
}

// allScenarios is the order of a full run.
var allScenarios = []string{"floor-http", "floor-password", "signup", "login", "login-burst", "refresh", "me", "apikey-read", "exchange", "verify",
	"refresh-x2", "me-x2", "floor-http-x2"}

// twoInstanceScenarios run on two latchd sharing one PostgreSQL database.
var twoInstanceScenarios = []string{"refresh-x2", "me-x2"}

// runtimeEnv is the Go runtime's settings among -latchd-env (GOMAXPROCS,
// GOGC, GOMEMLIMIT): the HTTP floors run with them too, so that a ratio
// to the floor compares runtimes sized alike.
func (b *bench) runtimeEnv() []string {
	var env []string
	for _, e := range b.o.extraEnv {
		if strings.HasPrefix(e, "GO") {
			env = append(env, e)
		}
	}
	return env
}

// onOneLatchd reports whether scenario s (after the two floors that open
// the run) runs on the single latchd: not the two-instance scenarios, nor
// floor-http-x2, which runs no latchd.
func onOneLatchd(s string) bool {
	return !slices.Contains(twoInstanceScenarios, s) && s != "floor-http-x2"
}

type envFlag struct{ l *[]string }

func (f envFlag) String() string { return "" }
func (f envFlag) Set(s string) error {
	// The Go runtime's own settings are accepted too, to run latchd (and
	// not the load generator) with, say, GOMAXPROCS=1.
	goRuntime := strings.HasPrefix(s, "GOMAXPROCS=") || strings.HasPrefix(s, "GOGC=") || strings.HasPrefix(s, "GOMEMLIMIT=")
	if !(strings.HasPrefix(s, "LATCH_") && strings.Contains(s, "=")) && !goRuntime {
		return errors.New("want LATCH_NAME=value, or GOMAXPROCS, GOGC or GOMEMLIMIT=value")
	}
	*f.l = append(*f.l, s)
	return nil
}

func parseFlags(args []string, stderr io.Writer) (options, string, error) {
	o := options{argon: password.DefaultParams()}
	fs := flag.NewFlagSet("latchbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var serveFloorAddr string
	var memKiB, timeCost, threads uint
	fs.StringVar(&serveFloorAddr, "serve-floor", "", "internal: serve the HTTP floor on this address")
	fs.StringVar(&o.db, "db", "sqlite", "sqlite (a new file in a temp dir), sqlite:///path.db, or postgres://... (a fresh database is created on that server and dropped after)")
	fs.BoolVar(&o.keepDB, "keep-db", false, "keep the database (and the temp dir) after the run")
	fs.StringVar(&o.latchd, "latchd", "", "latchd binary to run (default: go build ./cmd/latchd into a temp dir)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per scenario")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured warm-up per scenario")
	fs.IntVar(&o.conc, "c", 64, "connections (closed-loop workers) per scenario")
	fs.IntVar(&o.burstConc, "burst-c", 256, "connections of the login-burst scenario")
	fs.IntVar(&o.maxRequests, "max-requests", 2_000_000, "cap on measured requests per scenario")
	fs.StringVar(&o.scenarios, "scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios to run")
	fs.StringVar(&o.jsonPath, "json", "", "also write the report as JSON to this file")
	fs.IntVar(&o.hashConc, "hash-concurrency", runtime.NumCPU(), "LATCH_HASH_CONCURRENCY of latchd, and the password floor's concurrency")
	fs.DurationVar(&o.hashWait, "hash-max-wait", 0, "LATCH_HASH_MAX_WAIT of latchd (0: sized from the password floor so that -burst-c logins queue without 503)")
	fs.UintVar(&memKiB, "argon2-memory-kib", uint(o.argon.MemoryKiB), "LATCH_ARGON2_MEMORY_KIB")
	fs.UintVar(&timeCost, "argon2-time", uint(o.argon.Time), "LATCH_ARGON2_TIME")
	fs.UintVar(&threads, "argon2-threads", uint(o.argon.Threads), "LATCH_ARGON2_THREADS")
	fs.IntVar(&o.dbMaxConns, "db-max-conns", 0, "LATCH_DB_MAX_CONNS of latchd (0: latchd's default)")
	fs.BoolVar(&o.pprof, "pprof", false, "start latchd with LATCH_PPROF_ADDR on a loopback port")
	fs.StringVar(&o.profileDir, "profile-dir", "", "save a CPU profile of latchd per scenario here (implies -pprof)")
	fs.BoolVar(&o.seedLarge, "seed-large", false, "after the run, bulk-fill the database and measure refresh and me again")
	fs.IntVar(&o.largeUsers, "large-users", 1_000_000, "users -seed-large writes")
	fs.IntVar(&o.largeSessions, "large-sessions", 5_000_000, "sessions (each with a refresh token) -seed-large writes")
	fs.IntVar(&o.largeBatch, "large-batch", 50_000, "rows per transaction of -seed-large")
	fs.Float64Var(&o.errorBudget, "error-budget", 0.001, "fail when a scenario's error rate is above this")
	fs.StringVar(&o.apiKeyReadPath, "apikey-read-path", "/auth/me", "GET path of the apikey-read scenario (/auth/me or /api-keys)")
	fs.Var(envFlag{&o.extraEnv}, "latchd-env", "extra LATCH_NAME=value (or GOMAXPROCS, GOGC, GOMEMLIMIT=value, which the HTTP floors get too) for latchd (repeatable)")
	fs.BoolVar(&o.verbose, "v", false, "log progress")
	fs.StringVar(&o.pg, "pg", defaultPG(), "PostgreSQL server of the two-instance scenarios (refresh-x2, me-x2) when -db is SQLite; a fresh database is created there and dropped after (default $LATCH_TEST_POSTGRES_URL or the local server)")
	fs.StringVar(&o.base, "base", "", "compare with latchd built at this commit: each scenario runs on both, alternating, -rounds times; prints the ratio new/base per scenario with its spread")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of a -base comparison")
	if err := fs.Parse(args); err != nil {
		return o, "", err
	}
	if fs.NArg() > 0 {
		return o, "", fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	o.argon.MemoryKiB, o.argon.Time, o.argon.Threads = uint32(memKiB), uint32(timeCost), uint8(threads)
	if o.profileDir != "" {
		o.pprof = true
	}
	if o.conc < 1 || o.burstConc < 1 || o.duration <= 0 || o.maxRequests < 1 || o.hashConc < 1 {
		return o, "", errors.New("-c, -burst-c, -duration, -max-requests and -hash-concurrency must be positive")
	}
	for _, s := range strings.Split(o.scenarios, ",") {
		if !slices.Contains(allScenarios, strings.TrimSpace(s)) {
			return o, "", fmt.Errorf("unknown scenario %q (known: %s)", s, strings.Join(allScenarios, ","))
		}
	}
	if o.base != "" {
		switch {
		case o.rounds < 1:
			return o, "", errors.New("-rounds must be positive")
		case o.profileDir != "" || o.pprof || o.seedLarge || o.keepDB:
			return o, "", errors.New("-base does not combine with -profile-dir, -pprof, -seed-large or -keep-db")
		}
	}
	return o, serveFloorAddr, nil
}

// bench is one run.
type bench struct {
	o       options
	stderr  io.Writer
	run     string
	tmp     string
	dbURL   string
	dialect string
	// pg is the PostgreSQL database of the latchd scenarios (nil on SQLite).
	pg      *pgDB
	bin     string
	master  string
	latchd  *proc
	addr    string
	pprofAt string
	// phase is appended to profile file names: "-large" after -seed-large.
	phase   string
	h       *httpc
	accts   []*account
	keysErr error
	report  *Report
	floors  map[string]float64
	rows    map[string]int // scenario -> index in report.Rows, which grows
	// notRun says which scenarios could not run and why ("" when all ran).
	notRun string
}

func (b *bench) logf(format string, args ...any) {
	if b.o.verbose {
		fmt.Fprintf(b.stderr, "latchbench: "+format+"\n", args...)
	}
}

// Main runs latchbench and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	o, floorAddr, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "latchbench:", err)
		return 2
	}
	if floorAddr != "" {
		return serveFloor(floorAddr)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if o.base != "" {
		return compare(ctx, o, stdout, stderr)
	}
	b := &bench{o: o, stderr: stderr, floors: map[string]float64{}, rows: map[string]int{}}
	code, err := b.main(ctx, stdout)
	b.cleanup()
	if err != nil {
		fmt.Fprintln(stderr, "latchbench:", err)
		return 1
	}
	return code
}

func (b *bench) cleanup() {
	b.latchd.stop()
	if b.h != nil {
		b.h.close()
	}
	if b.pg != nil && !b.o.keepDB {
		b.pg.drop()
	}
	if b.tmp != "" && !b.o.keepDB {
		os.RemoveAll(b.tmp)
	} else if b.tmp != "" {
		fmt.Fprintln(b.stderr, "latchbench: kept", b.tmp)
	}
}

func (b *bench) main(ctx context.Context, stdout io.Writer) (int, error) {
	var err error
	rb := make([]byte, 4)
	_, _ = rand.Read(rb)
	b.run = hex.EncodeToString(rb)
	if b.tmp, err = os.MkdirTemp("", "latchbench-"); err != nil {
		return 1, err
	}
	if err := b.openDB(ctx); err != nil {
		return 1, err
	}
	b.master = newMasterKey()
	b.report = &Report{Started: time.Now().UTC(), Machine: readMachine(), ErrorBudget: b.o.errorBudget,
		Settings: map[string]any{
			"db": b.dialect, "duration": b.o.duration.String(), "warmup": b.o.warmup.String(), "connections": b.o.conc,
			"burst_connections": b.o.burstConc, "hash_concurrency": b.o.hashConc,
			"argon2":     fmt.Sprintf("m=%d KiB, t=%d, p=%d", b.o.argon.MemoryKiB, b.o.argon.Time, b.o.argon.Threads),
			"latchd_env": []string{"LATCH_RATE_LIMITS=false", "LATCH_LOG_LEVEL=warn"},
		}}
	want := map[string]bool{}
	for _, s := range strings.Split(b.o.scenarios, ",") {
		want[strings.TrimSpace(s)] = true
	}
	if b.bin = b.o.latchd; b.bin == "" {
		b.logf("building latchd")
		if b.bin, err = buildLatchd(ctx, b.tmp); err != nil {
			return 1, err
		}
	}

	// The floors first, on an idle machine.
	if want["floor-http"] {
		if err := b.floorHTTP(ctx, "floor-http", 1); err != nil {
			return 1, err
		}
	}
	if want["floor-password"] || want["signup"] || want["login"] || want["login-burst"] {
		b.floorPassword(ctx)
	}
	if b.o.hashWait == 0 {
		// A closed loop of burst-c logins keeps burst-c-hashConc requests
		// queued for hashing capacity; the last of them waits about
		// burst-c/floor seconds, more when other work shares the CPUs. Allow
		// 4 times that, at least 15 s and at most 50 s (under the client's
		// 60 s timeout), so the burst queues instead of failing with 503.
		w := 15 * time.Second
		if f := b.floors["password"]; f > 0 {
			w = max(w, time.Duration(4*float64(b.o.burstConc)/f*float64(time.Second)).Round(time.Second))
		}
		w = min(w, 50*time.Second)
		b.o.hashWait = w
	}
	b.report.Settings["hash_max_wait"] = b.o.hashWait.String()

	// The single-instance scenarios, on one latchd.
	single := false
	for _, s := range allScenarios[2:] {
		single = single || want[s] && onOneLatchd(s)
	}
	if single {
		if err := b.startLatchd(ctx); err != nil {
			return 1, err
		}
		if err := b.seed(ctx); err != nil {
			return 1, err
		}
		for _, s := range allScenarios[2:] {
			if !want[s] || !onOneLatchd(s) {
				continue
			}
			if ctx.Err() != nil {
				return 1, ctx.Err()
			}
			row, err := b.scenario(ctx, s)
			if err != nil {
				return 1, fmt.Errorf("%s: %w", s, err)
			}
			b.add(row)
		}
		if b.o.seedLarge {
			if err := b.large(ctx); err != nil {
				return 1, err
			}
		}
	}
	b.latchd.stop()
	b.latchd = nil
	if err := b.twoInstances(ctx, want); err != nil {
		return 1, err
	}
	if want["floor-http-x2"] {
		// What a second process on the same cores costs a bare handler:
		// the part of refresh-x2's and me-x2's extra CPU that is not Latch's.
		if err := b.floorHTTP(ctx, "floor-http-x2", 2); err != nil {
			return 1, err
		}
	}
	if want["floor-http"] {
		// The HTTP floor again, on the machine as the scenarios left it: the
		// ratios use the higher of the two, so a floor measured low at the
		// start (a noisy neighbour, a cold CPU) cannot flatter them.
		if err := b.floorHTTP(ctx, "floor-http-end", 1); err != nil {
			return 1, err
		}
		for i := range b.report.Rows {
			if r := &b.report.Rows[i]; r.Floor == "http" {
				b.rate(r)
			}
		}
	}
	b.report.Machine.LoadEnd = loadavg()
	b.checks()
	printTable(stdout, b.report)
	if b.o.jsonPath != "" {
		if err := writeJSON(b.o.jsonPath, b.report); err != nil {
			return 1, err
		}
	}
	if b.notRun != "" {
		fmt.Fprintf(stdout, "\nNOT RUN: %s\n", b.notRun)
		fmt.Fprintf(b.stderr, "latchbench: NOT RUN: %s\n", b.notRun)
	}
	if b.report.Failed {
		fmt.Fprintf(stdout, "\nFAIL: a scenario's errors exceeded %.2f%% of its requests\n", 100*b.o.errorBudget)
		return 1, nil
	}
	return 0, nil
}

// add records a row and computes its ratio to its floor.
func (b *bench) add(r Row) {
	b.rate(&r)
	b.report.Rows = append(b.report.Rows, r)
	b.rows[r.Scenario] = len(b.report.Rows) - 1
}

// row returns the recorded row of scenario, or nil. The pointer is good
// until the next add.
func (b *bench) row(scenario string) *Row {
	if i, ok := b.rows[scenario]; ok {
		return &b.report.Rows[i]
	}
	return nil
}

// rate computes r's ratio to its floor as it stands, whether it met its
// target, and its error rate (over the budget fails the run).
func (b *bench) rate(r *Row) {
	if r.Floor != "" && r.Skipped == "" {
		if f := b.floors[r.Floor]; f > 0 {
			r.Ratio = r.RPS / f
			if r.Target > 0 {
				r.Met = yesNo(r.Ratio >= r.Target)
			}
		}
	}
	if r.Requests > 0 {
		r.ErrorRate = float64(r.Errors) / float64(r.Requests)
		if r.ErrorRate > b.o.errorBudget {
			b.report.Failed = true
			r.Met = "no"
		}
	}
}

// openDB decides the database URL: a new SQLite file, a given SQLite file,
// or a fresh database on a PostgreSQL server.
func (b *bench) openDB(ctx context.Context) error {
	switch {
	case b.o.db == "sqlite" || b.o.db == "":
		b.dialect = "sqlite"
		b.dbURL = "sqlite://" + filepath.Join(b.tmp, "latch.db")
	case strings.HasPrefix(b.o.db, "sqlite://"):
		b.dialect = "sqlite"
		b.dbURL = b.o.db
	case strings.HasPrefix(b.o.db, "postgres://"), strings.HasPrefix(b.o.db, "postgresql://"):
		b.dialect = "postgres"
		var err error
		b.pg, err = b.createPostgres(ctx, b.o.db, "latchbench_"+b.run)
		if err != nil {
			return err
		}
		b.dbURL = b.pg.url
	default:
		return errors.New("-db must be sqlite, sqlite:///path or postgres://...")
	}
	return nil
}

// pgDB is a database latchbench created on a PostgreSQL server for a run.
type pgDB struct {
	url   string
	name  string
	admin *sql.DB // on the server's own database: CREATE, DROP, CHECKPOINT
	db    *sql.DB // on this database: ANALYZE
	logf  func(format string, args ...any)
}

// createPostgres creates the database name on the PostgreSQL server at
// serverURL.
func (b *bench) createPostgres(ctx context.Context, serverURL, name string) (*pgDB, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL URL: %w", err)
	}
	q := u.Query()
	if q.Get("sslmode") == "" {
		q.Set("sslmode", "disable")
		u.RawQuery = q.Encode()
	}
	admin, err := sql.Open("postgres", u.String())
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(cctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		return nil, fmt.Errorf("create database on %s: %w", u.Redacted(), err)
	}
	u.Path = "/" + name
	db, err := sql.Open("postgres", u.String())
	if err != nil {
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		admin.Close()
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return &pgDB{url: u.String(), name: name, admin: admin, db: db, logf: b.logf}, nil
}

// drop drops the database.
func (p *pgDB) drop() {
	p.db.Close()
	_, _ = p.admin.Exec("DROP DATABASE IF EXISTS " + p.name + " WITH (FORCE)")
	p.admin.Close()
}

// checkpoint runs CHECKPOINT before a scenario, as pgbench does before a
// run: no scenario pays for the dirty pages and full-page WAL images of the
// one before it (or of CREATE DATABASE and the seeding). Needs superuser
// or pg_checkpoint; without them the scenario runs as it is.
func (p *pgDB) checkpoint(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := p.admin.ExecContext(cctx, "CHECKPOINT"); err != nil {
		p.logf("CHECKPOINT: %v", err)
	}
}

// analyze runs ANALYZE at the end of a scenario's warm-up, while the load
// runs, so that the measured part sees the statistics that autovacuum's
// analyze keeps on a database in service (it runs within a minute of a
// table changing by a tenth). Without it a scenario measures the
// benchmark's own history instead: latchd's prepared statements keep the
// generic plans made when the tables were a few hundred rows old, and
// refresh ran at half its rate after signup and login had grown
// refresh_tokens tenfold in seconds (a sequential scan of the table per
// rotation batch; see docs/benchmarks.md).
func (p *pgDB) analyze(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := p.db.ExecContext(cctx, "ANALYZE"); err != nil {
		p.logf("ANALYZE: %v", err)
	}
}

func (b *bench) startLatchd(ctx context.Context) error {
	// A restart keeps the address: it is the tokens' issuer.
	var err error
	if b.addr == "" {
		if b.addr, err = freeAddr(); err != nil {
			return err
		}
	}
	addr := b.addr
	env := b.latchdEnv(addr, "http://"+addr, b.dbURL)
	if b.o.pprof {
		if b.pprofAt == "" {
			if b.pprofAt, err = freeAddr(); err != nil {
				return err
			}
		}
		env = append(env, "LATCH_PPROF_ADDR="+b.pprofAt)
	}
	env = append(env, b.o.extraEnv...)
	b.logf("starting latchd on %s (%s)", addr, b.dialect)
	p, err := startProc(ctx, "latchd", addr, b.bin, []string{"serve"}, env, filepath.Join(b.tmp, "latchd.log"), "/health")
	if err != nil {
		return err
	}
	b.latchd = p
	if b.h != nil {
		b.h.close()
	}
	b.h = newHTTPC(p.url(), max(b.o.conc, b.o.burstConc))
	return nil
}

// latchdEnv is the environment of a latchd serving on addr with the issuer
// and database, before -pprof and -latchd-env.
func (b *bench) latchdEnv(addr, issuer, dbURL string) []string {
	env := []string{
		"LATCH_ADDR=" + addr,
		"LATCH_DATABASE_URL=" + dbURL,
		"LATCH_ISSUER=" + issuer,
		"LATCH_MASTER_KEY=" + b.master,
		"LATCH_RATE_LIMITS=false",
		// The accounts go on to create API keys at once; the verification
		// flow is not what the benchmark measures.
		"LATCH_AUTOCONFIRM_EMAIL=true",
		"LATCH_LOG_LEVEL=warn",
		"LATCH_HASH_CONCURRENCY=" + strconv.Itoa(b.o.hashConc),
		"LATCH_HASH_MAX_WAIT=" + b.o.hashWait.String(),
		"LATCH_ARGON2_MEMORY_KIB=" + strconv.Itoa(int(b.o.argon.MemoryKiB)),
		"LATCH_ARGON2_TIME=" + strconv.Itoa(int(b.o.argon.Time)),
		"LATCH_ARGON2_THREADS=" + strconv.Itoa(int(b.o.argon.Threads)),
	}
	if b.o.dbMaxConns > 0 {
		env = append(env, "LATCH_DB_MAX_CONNS="+strconv.Itoa(b.o.dbMaxConns))
	}
	return env
}

// seed signs up one account per worker and gives each an API key.
func (b *bench) seed(ctx context.Context) error {
	b.logf("seeding %d accounts", b.o.conc)
	var err error
	if b.accts, err = seedAccounts(ctx, b.h, b.run, b.o.conc); err != nil {
		return fmt.Errorf("seed accounts: %w", err)
	}
	b.keysErr = seedAPIKeys(ctx, b.h, b.accts)
	if b.keysErr != nil && !errors.Is(b.keysErr, errUnavailable) {
		return fmt.Errorf("seed API keys: %w", b.keysErr)
	}
	return nil
}

// measure runs one closed loop against the process pid and fills a row.
func (b *bench) measure(ctx context.Context, name string, conc, pid int, setup func(*worker) error, f op) (Row, error) {
	var db *pgDB
	if b.latchd != nil && pid == b.latchd.pid() {
		db = b.pg
	}
	return b.measureAll(ctx, name, conc, []int{pid}, db, setup, f)
}

// measureAll runs one closed loop against the server processes pids and
// fills a row: server CPU is theirs together, peak RSS the largest one's.
// db, when not nil, is the PostgreSQL database they serve, analyzed at the
// end of the warm-up.
func (b *bench) measureAll(ctx context.Context, name string, conc int, pids []int, db *pgDB, setup func(*worker) error, f op) (Row, error) {
	b.logf("%s: %d connections, %v + %v", name, conc, b.o.warmup, b.o.duration)
	probes := make([]*probe, len(pids))
	for i, pid := range pids {
		probes[i] = newProbe(pid)
	}
	self := newProbe(os.Getpid())
	var prof chan error
	var busy0, busy1 float64
	start := func() {
		if db != nil {
			db.analyze(ctx)
		}
		busy0 = machineBusy()
		for _, pr := range probes {
			pr.start()
		}
		self.start()
		if b.o.profileDir != "" && b.latchd != nil && len(pids) == 1 && pids[0] == b.latchd.pid() {
			prof = make(chan error, 1)
			go func() { prof <- b.saveProfile(ctx, name) }()
		}
	}
	end := func() {
		for _, pr := range probes {
			pr.end()
		}
		self.end()
		busy1 = machineBusy()
	}
	res, err := runLoop(ctx, conc, b.o.warmup, b.o.duration, b.o.maxRequests, setup, f, start, end)
	if prof != nil {
		if perr := <-prof; perr != nil {
			fmt.Fprintf(b.stderr, "latchbench: %s: profile: %v\n", name, perr)
		}
	}
	if err != nil {
		return Row{}, err
	}
	var serverCPU, peak float64
	for _, pr := range probes {
		serverCPU += pr.cpu
		peak = max(peak, pr.peakMiB())
	}
	r := Row{Scenario: name, Concurrency: conc, Requests: res.Requests, Seconds: res.Elapsed.Seconds(),
		Errors: res.Errors, Status5xx: res.Status5xx, ServerPeakMiB: peak}
	if res.Requests > 0 {
		r.RPS = float64(res.Requests) / res.Elapsed.Seconds()
		r.ServerCPUus = serverCPU / float64(res.Requests) * 1e6
		r.ClientCPUus = self.cpu / float64(res.Requests) * 1e6
		ours := self.cpu
		if !slices.Contains(pids, os.Getpid()) {
			ours += serverCPU
		}
		r.OtherCores = max(0, busy1-busy0-ours) / res.Elapsed.Seconds()
		r.P50ms = ms(percentile(res.Lat, 0.50))
		r.P90ms = ms(percentile(res.Lat, 0.90))
		r.P99ms = ms(percentile(res.Lat, 0.99))
	}
	if len(res.Codes) > 0 {
		r.ErrorStatuses = map[string]int{}
		for c, n := range res.Codes {
			r.ErrorStatuses[strconv.Itoa(c)] = n
		}
		b.logf("%s: unexpected statuses %v", name, r.ErrorStatuses)
	}
	return r, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (b *bench) saveProfile(ctx context.Context, name string) error {
	if err := os.MkdirAll(b.o.profileDir, 0o755); err != nil {
		return err
	}
	secs := int(b.o.duration.Seconds())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", b.pprofAt, max(secs, 1)), nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	f, err := os.Create(filepath.Join(b.o.profileDir, b.dialect+"-"+name+b.phase+".pprof"))
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, res.Body)
	return err
}

// floorHTTP measures the HTTP floor as the row name; the floor is the
// highest such measurement of the run.
// floorHTTP measures the bare net/http floor on n processes (1 for
// floor-http and floor-http-end; 2 for floor-http-x2, each worker
// alternating between them as the two-instance scenarios do, which is what
// a second process on the same cores costs a handler that does nothing).
// Only a one-process run sets the floor the ratios use.
func (b *bench) floorHTTP(ctx context.Context, name string, n int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	hs := make([]*httpc, n)
	pids := make([]int, n)
	for i := range n {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		p, err := startProc(ctx, "http floor", addr, self, []string{"-serve-floor", addr}, b.runtimeEnv(), filepath.Join(b.tmp, fmt.Sprintf("floor-%d.log", i)), "/")
		if err != nil {
			return err
		}
		defer p.stop()
		hs[i] = newHTTPC(p.url(), b.o.conc)
		defer hs[i].close()
		pids[i] = p.pid()
	}
	row, err := b.measureAll(ctx, name, b.o.conc, pids, nil, nil, floorHTTPOp(hs))
	if err != nil {
		return err
	}
	row.Note = "bare net/http handler, small JSON body, own process"
	switch {
	case n > 1:
		row.Note = fmt.Sprintf("bare net/http handler on %d processes, each worker alternating between them; server CPU is theirs together", n)
	case name != "floor-http":
		row.Note += "; measured again after the scenarios (the floor is the higher)"
		fallthrough
	default:
		b.floors["http"] = max(b.floors["http"], row.RPS)
	}
	b.add(row)
	return nil
}

func (b *bench) floorPassword(ctx context.Context) {
	row, err := b.measure(ctx, "floor-password", b.o.hashConc, os.Getpid(), nil, passwordFloorOp(b.o.argon))
	if err != nil {
		return
	}
	b.floors["password"] = row.RPS
	row.Note = "argon2id hashes in the benchmark process at the hashing concurrency; CPU and RSS are the benchmark's"
	b.add(row)
}

// scenario runs one latchd scenario.
func (b *bench) scenario(ctx context.Context, name string) (Row, error) {
	if b.pg != nil {
		b.pg.checkpoint(ctx)
	}
	pid := b.latchd.pid()
	skip := func(floor string, target float64, conc int, why string) (Row, error) {
		return Row{Scenario: name, Concurrency: conc, Floor: floor, Target: target, Skipped: why}, nil
	}
	var r Row
	var err error
	switch name {
	case "signup":
		r, err = b.measure(ctx, name, b.o.conc, pid, nil, signupOp(b.h, b.run))
		r.Floor, r.Target = "password", 0.8
	case "login":
		r, err = b.measure(ctx, name, b.o.conc, pid, nil, loginOp(b.h, b.accts))
		r.Floor, r.Target = "password", 0.8
	case "login-burst":
		r, err = b.measure(ctx, name, b.o.burstConc, pid, nil, loginOp(b.h, b.accts))
		r.Floor = "password"
		limit := float64(b.o.hashConc)*float64(b.o.argon.MemoryKiB)/1024 + 100
		r.Note = fmt.Sprintf("peak RSS limit %.0f MiB (hash concurrency x argon2 memory + 100 MiB); 5xx %d", limit, r.Status5xx)
	case "refresh":
		r, err = b.measure(ctx, name, b.o.conc, pid, nil, refreshOp([]*httpc{b.h}, b.accts))
		r.Floor, r.Target = "http", 0.1
	case "me":
		r, err = b.measure(ctx, name, b.o.conc, pid, nil, meOp([]*httpc{b.h}, b.accts))
		r.Floor, r.Target = "http", 0.5
	case "apikey-read":
		if b.keysErr != nil {
			return skip("http", 0.5, b.o.conc, b.keysErr.Error())
		}
		r, err = b.measure(ctx, name, b.o.conc, pid, nil, apiKeyReadOp(b.h, b.accts, b.o.apiKeyReadPath))
		r.Floor, r.Target = "http", 0.5
		r.Note = "GET " + b.o.apiKeyReadPath + " with X-API-Key"
	case "exchange":
		if b.keysErr != nil {
			return skip("http", 0.35, b.o.conc, b.keysErr.Error())
		}
		if _, perr := probeEndpoint(ctx, b.h, http.MethodPost, "/auth/token", apiKeyHeader(b.accts[0].apiKey)); errors.Is(perr, errUnavailable) {
			return skip("http", 0.35, b.o.conc, perr.Error())
		}
		r, err = b.measure(ctx, name, b.o.conc, pid, nil, exchangeOp(b.h, b.accts))
		r.Floor, r.Target = "http", 0.35
	case "verify":
		return b.verifyScenario(ctx)
	default:
		return Row{}, fmt.Errorf("unknown scenario")
	}
	return r, err
}

// checks evaluates the targets of issue 7 that are not a plain ratio.
func (b *bench) checks() {
	add := func(what, got string, met bool) {
		b.report.Checks = append(b.report.Checks, Check{What: what, Got: got, Met: yesNo(met)})
	}
	for _, r := range b.report.Rows {
		if r.Skipped != "" || r.Target == 0 {
			continue
		}
		add(fmt.Sprintf("%s >= %.2f x %s floor", r.Scenario, r.Target, r.Floor), fmt.Sprintf("%.2f", r.Ratio), r.Ratio >= r.Target)
	}
	if r := b.row("refresh"); r != nil && r.Skipped == "" {
		add(fmt.Sprintf("refresh p99 < 50 ms at %d connections (%s)", r.Concurrency, b.dialect), fmt.Sprintf("%.1f ms", r.P99ms), r.P99ms < 50)
	}
	if r := b.row("login-burst"); r != nil && r.Skipped == "" {
		limit := float64(b.o.hashConc)*float64(b.o.argon.MemoryKiB)/1024 + 100
		add(fmt.Sprintf("login-burst peak RSS < %.0f MiB", limit), fmt.Sprintf("%.0f MiB", r.ServerPeakMiB), r.ServerPeakMiB < limit)
		add(fmt.Sprintf("login-burst: no 5xx at %d connections", r.Concurrency), strconv.Itoa(r.Status5xx), r.Status5xx == 0)
	}
	b.twoInstanceChecks(add)
	for _, l := range b.report.Large {
		add(fmt.Sprintf("%s on the large database >= 0.80 x small", l.Scenario), fmt.Sprintf("%.2f", l.Ratio), l.Ratio >= 0.8)
	}
	for _, r := range b.report.Rows {
		if r.Requests > 0 {
			add(fmt.Sprintf("%s errors <= %.1f%%", r.Scenario, 100*b.o.errorBudget), fmt.Sprintf("%d (%.3f%%)", r.Errors, 100*r.ErrorRate), r.ErrorRate <= b.o.errorBudget)
		}
	}
}

package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/logwriter"
)

// command is one of latchd's commands.
type command struct {
	// name is how it is called: "serve", "keys rotate".
	name string
	// summary is its line in latchd help.
	summary string
	// doc is the paragraph of its own help.
	doc string
	// flags are the settings its help lists (nil: every setting); it
	// accepts every setting whatever this says.
	flags []string
	// config says whether it reads the configuration (version does not).
	config bool
	run    func(ctx context.Context, r runEnv, c Config) int
}

// runEnv is what a command runs with.
type runEnv struct {
	stdout, stderr io.Writer
	log            *slog.Logger
	clock          domain.Clock
}

// databaseFlags returns the settings of every command that opens the
// database.
func databaseFlags() []string {
	return []string{"database-url", "database-direct-url", "db-max-conns", "db-prepared-statements", "log-level", "log-format"}
}

// commands returns latchd's commands in the order help lists them.
func commands() []command {
	return []command{
		{name: "serve", summary: "serve the API (the command when none is given)", config: true,
			doc: "Serve binds LATCH_ADDR (and LATCH_ADMIN_ADDR when set) first, so that an address in use fails before the database is touched; " +
				"then it applies pending migrations, creates the signing key on first start and serves until SIGINT or SIGTERM, " +
				"when it shuts down gracefully within LATCH_SHUTDOWN_TIMEOUT.",
			run: func(ctx context.Context, r runEnv, c Config) int { return serveCommand(ctx, r, c) }},
		{name: "migrate", summary: "apply pending database migrations, then exit", config: true, flags: databaseFlags(),
			doc: "Migrate applies the pending migrations of LATCH_DATABASE_URL (through LATCH_DATABASE_DIRECT_URL when set) and exits. " +
				"Serve applies them too; run this first when several instances start at once.",
			run: func(ctx context.Context, r runEnv, c Config) int {
				st, err := Open(ctx, c)
				if err != nil {
					fmt.Fprintln(r.stderr, "latchd:", err)
					return 1
				}
				st.Close()
				fmt.Fprintln(r.stdout, "migrations applied")
				return 0
			}},
		{name: "keys rotate", summary: "add a signing key of LATCH_SIGNING_ALG (--alg) that becomes the active one", config: true,
			flags: append(databaseFlags(), "signing-alg", "master-key", "key-publish-delay", "access-ttl"),
			doc: "Keys rotate adds a signing key of LATCH_SIGNING_ALG (or --alg ES256|EdDSA|RS256), published in the JWKS at once and signing " +
				"after LATCH_KEY_PUBLISH_DELAY. Older keys keep verifying, and stay in the JWKS, for two access-token lifetimes. " +
				"Running instances load the new key at once.",
			run: func(ctx context.Context, r runEnv, c Config) int {
				return rotateCommand(ctx, c, r.clock, r.stdout, r.stderr)
			}},
		{name: "keys list", summary: "list the signing keys that still verify tokens, with their state", config: true,
			flags: append(databaseFlags(), "access-ttl"),
			doc:   "Keys list prints each signing key that verifies tokens, or retired within two access-token lifetimes: its algorithm, state and times. It only reads.",
			run: func(ctx context.Context, r runEnv, c Config) int {
				return listKeysCommand(ctx, c, r.clock, r.stdout, r.stderr)
			}},
		{name: "keys seal", summary: "encrypt with LATCH_MASTER_KEY the values stored before it was set", config: true,
			flags: append(databaseFlags(), "master-key"),
			doc: "Keys seal encrypts with LATCH_MASTER_KEY the signing keys and server secrets stored unencrypted (written while no master key was set). " +
				"A database that has them is refused under a master key until this has run. Running it again seals nothing.",
			run: func(ctx context.Context, r runEnv, c Config) int { return sealCommand(ctx, c, r.stdout, r.stderr) }},
		{name: "version", summary: "print latchd's version",
			doc: "Version prints latchd's version.",
			run: func(_ context.Context, r runEnv, _ Config) int { fmt.Fprintln(r.stdout, "latchd", Version()); return 0 }},
		{name: "help", summary: "list the commands, or show one's usage and flags: latchd help <command>",
			doc: "Help lists the commands; latchd help <command> (or latchd <command> -h) shows a command's usage and flags."},
	}
}

// findCommand returns the command called name ("keys rotate").
func findCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// isHelp reports whether a is a request for help.
func isHelp(a string) bool {
	switch a {
	case "-h", "-help", "--help", "--h", "help":
		return true
	}
	return false
}

// Main runs the latchd command line and returns the exit code: 0 on
// success and for help, 1 when a command fails, 2 for a usage or
// configuration error.
func Main(args []string, stdout, stderr io.Writer) int {
	return run(args, os.Getenv, os.Environ(), stdout, stderr)
}

// run is Main with the environment as arguments.
func run(args []string, getenv func(string) string, environ []string, stdout, stderr io.Writer) int {
	name, rest, code := parseCommand(args, stdout, stderr)
	if code >= 0 {
		return code
	}
	cmd, _ := findCommand(name)
	for _, a := range rest {
		if a == "--" {
			break
		}
		if isHelp(a) && a != "help" {
			writeCommandHelp(stdout, cmd)
			return 0
		}
	}
	if cmd.name == "keys rotate" {
		// keys rotate --alg X is -signing-alg X: the algorithm of the new key.
		for i, a := range rest {
			switch {
			case a == "--alg" || a == "-alg":
				rest[i] = "-signing-alg"
			case strings.HasPrefix(a, "--alg=") || strings.HasPrefix(a, "-alg="):
				rest[i] = "-signing-alg=" + a[strings.IndexByte(a, '=')+1:]
			}
		}
	}
	r := runEnv{stdout: stdout, stderr: stderr, clock: domain.SystemClock{}}
	var c Config
	if cmd.config {
		var err error
		if c, err = ParseConfig(rest, getenv, io.Discard); err != nil {
			writeConfigError(stderr, err)
			return 2
		}
		// Log lines (one per request at info) are coalesced into few writes,
		// each line at most 5 ms late; Close writes out the rest before the
		// command returns.
		lw := logwriter.New(stderr, 0, 5*time.Millisecond)
		defer lw.Close()
		r.log = NewLogger(c, lw)
		warnUnknownVariables(r.log, environ)
	} else if len(rest) > 0 {
		fmt.Fprintf(stderr, "latchd: %s takes no arguments\n", cmd.name)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	return cmd.run(ctx, r, c)
}

// parseCommand splits args into the command's name and its arguments.
// When it has answered itself (help, a usage error) it returns the exit
// code; otherwise -1.
func parseCommand(args []string, stdout, stderr io.Writer) (string, []string, int) {
	if len(args) == 0 || (strings.HasPrefix(args[0], "-") && !isHelp(args[0])) {
		return "serve", args, -1
	}
	if isHelp(args[0]) {
		if len(args) == 1 {
			writeHelp(stdout)
			return "", nil, 0
		}
		name := strings.Join(args[1:], " ")
		if name == "keys" {
			writeKeysHelp(stdout)
			return "", nil, 0
		}
		if cmd, ok := findCommand(name); ok {
			writeCommandHelp(stdout, cmd)
			return "", nil, 0
		}
		unknownCommand(stderr, name)
		return "", nil, 2
	}
	name, rest := args[0], args[1:]
	if name == "keys" {
		if len(rest) == 0 {
			writeKeysHelp(stderr)
			return "", nil, 2
		}
		if isHelp(rest[0]) {
			writeKeysHelp(stdout)
			return "", nil, 0
		}
		name, rest = "keys "+rest[0], rest[1:]
	}
	if _, ok := findCommand(name); !ok || name == "help" {
		unknownCommand(stderr, name)
		return "", nil, 2
	}
	return name, rest, -1
}

func unknownCommand(w io.Writer, name string) {
	names := []string{"keys"}
	for _, c := range commands() {
		names = append(names, c.name)
	}
	hint := ""
	if c := closest(name, names); c != "" {
		hint = fmt.Sprintf("; did you mean %q?", c)
	}
	fmt.Fprintf(w, "latchd: unknown command %q%s\nRun latchd help for the list of commands.\n", name, hint)
}

// writeConfigError writes a configuration error, one refused setting per
// line.
func writeConfigError(w io.Writer, err error) {
	lines := strings.Split(err.Error(), "\n")
	if len(lines) == 1 {
		fmt.Fprintln(w, "latchd: bad configuration:", lines[0])
	} else {
		fmt.Fprintln(w, "latchd: bad configuration:")
		for _, l := range lines {
			fmt.Fprintln(w, "  "+l)
		}
	}
	fmt.Fprintln(w, "Run latchd help serve for every setting.")
}

// warnUnknownVariables logs at WARN each LATCH_* variable of environ that
// names no setting, with the known one it is likely a typo of.
func warnUnknownVariables(log *slog.Logger, environ []string) {
	for _, u := range UnknownVariables(environ) {
		if u.Closest != "" {
			log.Warn(fmt.Sprintf("%s is not a setting of latchd and is ignored; did you mean %s?", u.Name, u.Closest),
				"setting", u.Name, "closest", u.Closest)
		} else {
			log.Warn(u.Name+" is not a setting of latchd and is ignored", "setting", u.Name)
		}
	}
}

// writeHelp writes latchd's help: the commands, one line each.
func writeHelp(w io.Writer) {
	fmt.Fprint(w, "latchd is the Latch authentication server.\n\nUsage:\n  latchd [command] [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nEvery flag is also a LATCH_* environment variable (-access-ttl is LATCH_ACCESS_TTL); flags win.\n"+
		"Run latchd help <command> or latchd <command> -h for a command's flags.\n")
}

func writeKeysHelp(w io.Writer) {
	fmt.Fprint(w, "Usage:\n  latchd keys rotate|list|seal [flags]\n\nCommands:\n")
	for _, c := range commands() {
		if strings.HasPrefix(c.name, "keys ") {
			fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprint(w, "\nRun latchd help keys <command> for a command's flags.\n")
}

// writeCommandHelp writes a command's usage, what it does and its flags.
func writeCommandHelp(w io.Writer, cmd command) {
	usage := "latchd " + cmd.name
	if cmd.config {
		usage += " [flags]"
	}
	if cmd.name == "help" {
		usage += " [command]"
	}
	fmt.Fprintf(w, "Usage:\n  %s\n\n%s\n", usage, wrap(cmd.doc, 78))
	if !cmd.config {
		return
	}
	all := defaultSettings().list
	var list []*setting
	for _, st := range all {
		if cmd.flags == nil || slices.Contains(cmd.flags, st.flag) {
			list = append(list, st)
		}
	}
	fmt.Fprint(w, "\nFlags (each also a LATCH_* environment variable; flags win):\n")
	writeSettings(w, list)
	if cmd.flags != nil {
		fmt.Fprint(w, "\nIt accepts every setting of latchd serve too (latchd help serve).\n")
	}
}

// writeSettings writes the help of settings: flag, kind, variable, default
// and what it does.
func writeSettings(w io.Writer, list []*setting) {
	for _, st := range list {
		kind := " " + st.kind
		if st.kind == "bool" {
			kind = ""
		}
		def := ""
		if st.def != "" {
			def = ", default " + st.def
		}
		fmt.Fprintf(w, "  -%s%s\n        %s (%s%s)\n", st.flag, kind, st.usage, st.env, def)
	}
}

// wrap breaks s into lines of at most width characters.
func wrap(s string, width int) string {
	var b strings.Builder
	n := 0
	for _, word := range strings.Fields(s) {
		if n > 0 && n+1+len(word) > width {
			b.WriteByte('\n')
			n = 0
		} else if n > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
}

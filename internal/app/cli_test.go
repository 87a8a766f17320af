package app_test

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/latchauth/latch/internal/app"
)

// commandLines are the commands latchd help lists, one line each.
var commandLines = []string{"serve ", "migrate ", "keys rotate ", "keys list ", "keys seal ", "version ", "help "}

// TestHelpListsTheCommands: -h, --help and help list the commands, one line
// each, on stdout, and exit 0; no flag is listed there.
func TestHelpListsTheCommands(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"-help"}, {"help"}} {
		code, stdout, stderr := latchd(args...)
		if code != 0 || stderr != "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
		for _, c := range commandLines {
			n := 0
			for _, l := range strings.Split(stdout, "\n") {
				if strings.HasPrefix(strings.TrimSpace(l), c) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%v: %d lines for %q in\n%s", args, n, c, stdout)
			}
		}
		if strings.Contains(stdout, "-access-ttl duration") || strings.Count(stdout, "\n") > 20 {
			t.Errorf("%v lists flags:\n%s", args, stdout)
		}
	}
}

// TestCommandHelp: latchd help <command> and latchd <command> -h show that
// command's usage and its flags with their variables, and exit 0.
func TestCommandHelp(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		usage     string
		want, not []string
	}{
		{[]string{"help", "serve"}, "latchd serve [flags]", []string{"-access-ttl duration", "LATCH_ACCESS_TTL, default 15m", "-rate-limits\n", "LATCH_MASTER_KEY"}, nil},
		{[]string{"serve", "-h"}, "latchd serve [flags]", []string{"-access-ttl duration"}, nil},
		{[]string{"-access-ttl", "5m", "--help"}, "latchd serve [flags]", []string{"-access-ttl duration"}, nil},
		{[]string{"migrate", "--help"}, "latchd migrate [flags]", []string{"-database-url string", "every setting of latchd serve"}, []string{"-access-ttl"}},
		{[]string{"help", "keys", "rotate"}, "latchd keys rotate [flags]", []string{"-signing-alg string", "-key-publish-delay duration", "--alg"}, []string{"-cors-origins"}},
		{[]string{"keys", "seal", "-h"}, "latchd keys seal [flags]", []string{"-master-key string"}, nil},
		{[]string{"keys", "list", "-h"}, "latchd keys list [flags]", []string{"-database-url"}, nil},
		{[]string{"keys", "-h"}, "latchd keys rotate|list|seal", []string{"keys rotate ", "keys list ", "keys seal "}, nil},
		{[]string{"help", "keys"}, "latchd keys rotate|list|seal", nil, nil},
		{[]string{"help", "version"}, "latchd version\n", nil, []string{"Flags"}},
		{[]string{"help", "help"}, "latchd help [command]", nil, nil},
	} {
		code, stdout, stderr := latchd(tc.args...)
		if code != 0 || stderr != "" || !strings.Contains(stdout, "Usage:\n  "+tc.usage) {
			t.Errorf("%v: exit %d, stderr %q, stdout\n%s", tc.args, code, stderr, stdout)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(stdout, w) {
				t.Errorf("%v: no %q in\n%s", tc.args, w, stdout)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(stdout, w) {
				t.Errorf("%v: %q in\n%s", tc.args, w, stdout)
			}
		}
	}
}

// TestUsageErrors: an unknown command, flag or help topic exits 2 with the
// closest known name; keys alone shows its usage on stderr.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serv"}, `unknown command "serv"; did you mean "serve"?`},
		{[]string{"kees", "rotate"}, `unknown command "kees"; did you mean "keys"?`},
		{[]string{"keys", "rotat"}, `unknown command "keys rotat"; did you mean "keys rotate"?`},
		{[]string{"help", "nonsense"}, `unknown command "nonsense"`},
		{[]string{"keys"}, "latchd keys rotate|list|seal"},
		{[]string{"serve", "-acess-ttl", "5m"}, "unknown flag -acess-ttl: did you mean -access-ttl?"},
		{[]string{"version", "extra"}, "version takes no arguments"},
	} {
		code, stdout, stderr := latchd(tc.args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
}

// TestConfigurationErrors: each kind of setting refuses a bad value with
// one message that names the variable, shows the value and gives an
// example; a secret is never shown.
func TestConfigurationErrors(t *testing.T) {
	for env, want := range map[string]string{
		// durations, when they do not parse and when out of range
		"LATCH_ACCESS_TTL=banana":   `LATCH_ACCESS_TTL="banana": want a duration such as 15m`,
		"LATCH_ACCESS_TTL=48h":      `LATCH_ACCESS_TTL="48h": want a duration between 10s and 24h such as 15m`,
		"LATCH_SHUTDOWN_TIMEOUT=5":  `LATCH_SHUTDOWN_TIMEOUT="5": want a duration such as 15s`,
		"LATCH_RESET_TTL=1s":        `LATCH_RESET_TTL="1s": want a duration between 1m and 24h such as 1h`,
		"LATCH_API_KEY_CACHE_TTL=1": `LATCH_API_KEY_CACHE_TTL="1": want a duration such as 5s`,
		// integers
		"LATCH_DB_MAX_CONNS=many":   `LATCH_DB_MAX_CONNS="many": want a whole number such as 10`,
		"LATCH_PRUNE_BATCH=0":       `LATCH_PRUNE_BATCH="0": want a whole number between 1 and 100000 such as 1000`,
		"LATCH_QUOTA_SESSIONS=-1":   `LATCH_QUOTA_SESSIONS="-1": want a whole number, 0 for no quota, such as 100`,
		"LATCH_ARGON2_THREADS=300":  `LATCH_ARGON2_THREADS="300": want a whole number from 0 to 255 such as 1`,
		"LATCH_MAX_BODY_BYTES=1k":   `LATCH_MAX_BODY_BYTES="1k": want a whole number such as 65536`,
		"LATCH_MAX_BODY_BYTES=10":   `LATCH_MAX_BODY_BYTES="10": want a whole number of at least 1024 such as 65536`,
		"LATCH_ARGON2_MEMORY_KIB=x": `LATCH_ARGON2_MEMORY_KIB="x": want a whole number from 0 to 4294967295 such as 19456`,
		// booleans
		"LATCH_RATE_LIMITS=maybe": `LATCH_RATE_LIMITS="maybe": want true or false`,
		// rate rules
		"LATCH_RATE_LOGIN_IP=5":      `LATCH_RATE_LOGIN_IP="5": want N/duration, N at least 1, such as 30/1m`,
		"LATCH_RATE_SIGNUP_IP=0/1h":  `LATCH_RATE_SIGNUP_IP="0/1h": want N/duration, N at least 1, such as 20/1h`,
		"LATCH_RATE_INVITE_ORG=5/xx": `LATCH_RATE_INVITE_ORG="5/xx": want N/duration, N at least 1, such as 50/1h`,
		// URLs
		"LATCH_PUBLIC_URL=ftp://x":   `LATCH_PUBLIC_URL="ftp://x": want an absolute http or https URL such as https://auth.example.com`,
		"LATCH_REDIS_URL=http://x":   `LATCH_REDIS_URL="http://x": want a redis or rediss URL such as redis://127.0.0.1:6379/0`,
		"LATCH_RESET_URL=/no-token":  `LATCH_RESET_URL="/no-token": must contain {token}; want an absolute URL or a path below LATCH_PUBLIC_URL, with {token}, such as /reset-password#token={token}`,
		"LATCH_DATABASE_URL=mysql:x": `LATCH_DATABASE_URL="mysql:x": want a sqlite, postgres or postgresql URL such as sqlite://latch.db or postgres://`,
		// enums
		"LATCH_LOG_FORMAT=xml":         `LATCH_LOG_FORMAT="xml": want text or json`,
		"LATCH_LOG_LEVEL=loud":         `LATCH_LOG_LEVEL="loud": want debug, info, warn or error`,
		"LATCH_SIGNING_ALG=HS256":      `LATCH_SIGNING_ALG="HS256": want ES256, EdDSA or RS256`,
		"LATCH_MAIL_TRANSPORT=pigeon":  `LATCH_MAIL_TRANSPORT="pigeon": want log, smtp or none`,
		"LATCH_RATE_LIMIT_STORE=disk":  `LATCH_RATE_LIMIT_STORE="disk": want memory, postgres or redis`,
		"LATCH_RATE_LIMIT_STORE=redis": `LATCH_REDIS_URL="": want a redis URL such as redis://127.0.0.1:6379/0 when LATCH_RATE_LIMIT_STORE is redis`,
		// addresses and lists of them
		"LATCH_ADDR=nowhere":                           `LATCH_ADDR="nowhere": want host:port such as 127.0.0.1:8080`,
		"LATCH_ADDR=127.0.0.1:99999":                   `LATCH_ADDR="127.0.0.1:99999": want host:port such as 127.0.0.1:8080`,
		"LATCH_ADMIN_ADDR=9090":                        `LATCH_ADMIN_ADDR="9090": want host:port such as 127.0.0.1:9090 (or empty: off)`,
		"LATCH_TRUSTED_PROXIES=proxy.example":          `LATCH_TRUSTED_PROXIES="proxy.example": want comma-separated addresses or CIDR prefixes such as 10.0.0.0/8,192.0.2.1`,
		"LATCH_OPERATOR_EMAILS=ops":                    `LATCH_OPERATOR_EMAILS="ops": "ops" is not an email address; want comma-separated addresses such as ops@example.com`,
		"LATCH_MAIL_FROM=nobody":                       `LATCH_MAIL_FROM="nobody": want an address such as "Latch <no-reply@example.com>"`,
		"LATCH_OTP_REDIRECT_URLS=https://a.example/*x": `LATCH_OTP_REDIRECT_URLS="https://a.example/*x": "https://a.example/*x": a wildcard must be a final /*`,
		"LATCH_OTP_REDIRECT_URLS=https://a.example*":   `LATCH_OTP_REDIRECT_URLS="https://a.example*": "https://a.example*": a wildcard must be a final /*`,
		"LATCH_OTP_REDIRECT_URLS=app.example/cb":       `LATCH_OTP_REDIRECT_URLS="app.example/cb": "app.example/cb": want an absolute http or https URL without query or fragment`,
		"LATCH_OTP_URL=/sign-in":                       `LATCH_OTP_URL="/sign-in": must contain {token}`,
		"LATCH_OTP_TTL=2h":                             `LATCH_OTP_TTL="2h": want a duration between 1m and 1h such as 10m`,
		// secrets: never shown
		"LATCH_MASTER_KEY=c2hvcnQ=":                     `LATCH_MASTER_KEY=(8 characters, not shown): want the base64 of 32 random bytes, such as the output of: openssl rand -base64 32`,
		"LATCH_DATABASE_URL=mysql://u:hunter2@h/db":     `LATCH_DATABASE_URL="mysql://u:xxxxx@h/db": want a sqlite, postgres or postgresql URL`,
		"LATCH_DATABASE_DIRECT_URL=%zz:hunter2@h":       `LATCH_DATABASE_DIRECT_URL=(not shown: it may hold a password): want a postgres or postgresql URL`,
		"LATCH_SMTP_URL=smtp://u:hunter2@":              `LATCH_SMTP_URL="smtp://u:xxxxx@"`,
		"LATCH_REDIS_URL=http://u:hunter2@example.com/": `LATCH_REDIS_URL="http://u:xxxxx@example.com/": want a redis or rediss URL`,
	} {
		k, v, _ := strings.Cut(env, "=")
		_, err := parseEnv(map[string]string{k: v})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %s", env, err, want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || (k == "LATCH_MASTER_KEY" && strings.Contains(err.Error(), v)) {
			t.Errorf("%s: the secret is shown: %v", env, err)
		}
		if strings.Count(err.Error(), "\n") > 0 {
			t.Errorf("%s: one bad value, several errors: %v", env, err)
		}
	}
	// A flag names itself and its variable.
	if _, err := parseEnv(nil, "-access-ttl", "banana"); err == nil ||
		err.Error() != `-access-ttl="banana" (LATCH_ACCESS_TTL): want a duration such as 15m` {
		t.Errorf("-access-ttl banana: %v", err)
	}
	// latchd itself: exit 2, the message on stderr.
	t.Setenv("LATCH_ACCESS_TTL", "banana")
	code, stdout, stderr := latchd("migrate")
	if code != 2 || stdout != "" || !strings.Contains(stderr, `latchd: bad configuration: LATCH_ACCESS_TTL="banana": want a duration such as 15m`) {
		t.Errorf("latchd migrate with LATCH_ACCESS_TTL=banana: exit %d, stderr %q", code, stderr)
	}
}

// TestUnknownVariables: a LATCH_* variable that names no setting is
// reported with the known one nearest to it; the clients' and the tests'
// variables are not.
func TestUnknownVariables(t *testing.T) {
	got := app.UnknownVariables([]string{
		"PATH=/bin", "LATCH_ACESS_TTL=15m", "LATCH_ACCESS_TTL=1m", "LATCH_URL=http://x", "LATCH_API_KEY=k",
		"LATCH_TEST_POSTGRES_URL=x", "LATCH_MASTERKEY=x", "LATCH_SOMETHING_ELSE_ENTIRELY=1", "LATCH_RATE_LOGIN_IPS=5/1m",
	})
	want := []app.UnknownVariable{
		{Name: "LATCH_ACESS_TTL", Closest: "LATCH_ACCESS_TTL"},
		{Name: "LATCH_MASTERKEY", Closest: "LATCH_MASTER_KEY"},
		{Name: "LATCH_SOMETHING_ELSE_ENTIRELY"},
		{Name: "LATCH_RATE_LOGIN_IPS", Closest: "LATCH_RATE_LOGIN_IP"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("UnknownVariables:\n got %v\nwant %v", got, want)
	}
}

// TestUnknownVariableWarnsAtStart: latchd logs a WARN naming a mistyped
// variable and the setting it is likely meant for, and goes on.
func TestUnknownVariableWarnsAtStart(t *testing.T) {
	t.Setenv("LATCH_ACESS_TTL", "5m")
	db := filepath.Join(t.TempDir(), "latch.db")
	code, stdout, stderr := latchd("migrate", "-database-url", "sqlite://"+db)
	if code != 0 || !strings.Contains(stdout, "migrations applied") {
		t.Fatalf("migrate: exit %d %q %q", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "level=WARN") || !strings.Contains(stderr, "LATCH_ACESS_TTL is not a setting of latchd and is ignored; did you mean LATCH_ACCESS_TTL?") {
		t.Fatalf("no warning for LATCH_ACESS_TTL: %q", stderr)
	}
}

// TestServeBindsBeforeTheDatabase: serve on an address in use (the API's
// or the admin listener's) exits 1 naming it, and creates no database file
// nor changes an existing one.
func TestServeBindsBeforeTheDatabase(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	dir := t.TempDir()
	fresh := filepath.Join(dir, "fresh.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-addr", busy.Addr().String()}, "LATCH_ADDR"},
		{[]string{"-addr", free(), "-admin-addr", busy.Addr().String()}, "LATCH_ADMIN_ADDR"},
	} {
		code, _, stderr := latchd(append([]string{"serve", "-database-url", "sqlite://" + fresh}, tc.args...)...)
		if code != 1 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "address already in use") {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, stderr)
		}
		if _, err := os.Stat(fresh); !os.IsNotExist(err) {
			t.Fatalf("%v: the database file was created: %v", tc.args, err)
		}
	}
}

package app_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/testutil"
	"github.com/latchauth/latch/internal/token"
)

const (
	masterKey      = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	otherMasterKey = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
)

func parseEnv(env map[string]string, args ...string) (app.Config, error) {
	return app.ParseConfig(args, func(k string) string { return env[k] }, io.Discard)
}

// TestTrustProxyIsRefused: the old setting believed X-Forwarded-For from
// anyone; set to true it now stops latchd with an error naming its
// replacement instead of silently meaning something else.
func TestTrustProxyIsRefused(t *testing.T) {
	for _, env := range []map[string]string{{"LATCH_TRUST_PROXY": "true"}, {"LATCH_TRUST_PROXY": "1"}} {
		if _, err := parseEnv(env); err == nil || !strings.Contains(err.Error(), "LATCH_TRUSTED_PROXIES") {
			t.Errorf("%v: %v, want an error naming LATCH_TRUSTED_PROXIES", env, err)
		}
	}
	if _, err := parseEnv(nil, "-trust-proxy"); err == nil || !strings.Contains(err.Error(), "LATCH_TRUSTED_PROXIES") {
		t.Errorf("-trust-proxy: %v, want an error naming LATCH_TRUSTED_PROXIES", err)
	}
	for _, env := range []map[string]string{nil, {"LATCH_TRUST_PROXY": "false"}} {
		if c, err := parseEnv(env); err != nil || len(c.TrustedProxies) != 0 {
			t.Errorf("%v: %v %v", env, c.TrustedProxies, err)
		}
	}
	c, err := parseEnv(map[string]string{"LATCH_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1,2001:db8::/32"})
	if err != nil || len(c.TrustedProxies) != 3 || c.TrustedProxies[1].String() != "192.0.2.1/32" {
		t.Fatalf("LATCH_TRUSTED_PROXIES: %v %v", c.TrustedProxies, err)
	}
	if _, err := parseEnv(map[string]string{"LATCH_TRUSTED_PROXIES": "10.0.0.0/8, proxy.internal"}); err == nil ||
		!strings.Contains(err.Error(), "LATCH_TRUSTED_PROXIES") || !strings.Contains(err.Error(), "proxy.internal") {
		t.Fatalf("a host name in LATCH_TRUSTED_PROXIES: %v", err)
	}
}

// TestArgon2BelowOWASPIsRefused: parameters below every row of OWASP's
// table stop latchd unless LATCH_ALLOW_WEAK_HASHING says otherwise.
func TestArgon2BelowOWASPIsRefused(t *testing.T) {
	for mt, ok := range map[[2]string]bool{
		{"19456", "2"}: true, {"47104", "1"}: true, {"12288", "3"}: true, {"9216", "4"}: true, {"7168", "5"}: true,
		{"1024", "1"}: false, {"19456", "1"}: false, {"12288", "2"}: false, {"7167", "10"}: false,
	} {
		env := map[string]string{"LATCH_ARGON2_MEMORY_KIB": mt[0], "LATCH_ARGON2_TIME": mt[1]}
		_, err := parseEnv(env)
		if ok && err != nil {
			t.Errorf("m=%s t=%s refused: %v", mt[0], mt[1], err)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), "OWASP") || !strings.Contains(err.Error(), "LATCH_ALLOW_WEAK_HASHING")) {
			t.Errorf("m=%s t=%s: %v, want a refusal naming LATCH_ALLOW_WEAK_HASHING", mt[0], mt[1], err)
		}
		env["LATCH_ALLOW_WEAK_HASHING"] = "true"
		if _, err := parseEnv(env); err != nil {
			t.Errorf("m=%s t=%s with LATCH_ALLOW_WEAK_HASHING: %v", mt[0], mt[1], err)
		}
	}
}

// serveLogs starts c's app on ln until it has logged that it listens, stops
// it, and returns the JSON log records.
func serveLogs(t *testing.T, c app.Config, ln net.Listener) []map[string]any {
	t.Helper()
	logs := &lockedBuffer{}
	a, err := app.New(context.Background(), c, slog.New(slog.NewJSONHandler(logs, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "latchd listening") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

func warnings(recs []map[string]any, setting string) int {
	n := 0
	for _, r := range recs {
		if r["level"] == "WARN" && r["setting"] == setting {
			n++
		}
	}
	return n
}

// TestWeakSettingsWarnAtStart: no master key on a listener other than
// loopback, and weak hashing allowed, each log one WARN line at start.
func TestWeakSettingsWarnAtStart(t *testing.T) {
	cfg := func(args ...string) app.Config {
		c, err := parseEnv(nil, append([]string{"-database-url", "sqlite://" + filepath.Join(t.TempDir(), "x.db")}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	listen := func(addr string) net.Listener {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	recs := serveLogs(t, cfg(), listen("0.0.0.0:0"))
	if warnings(recs, "LATCH_MASTER_KEY") != 1 {
		t.Fatalf("no master key on 0.0.0.0: want one WARN naming LATCH_MASTER_KEY, got %v", recs)
	}
	if recs := serveLogs(t, cfg(), listen("127.0.0.1:0")); warnings(recs, "LATCH_MASTER_KEY") != 0 {
		t.Fatalf("no master key on loopback: %v", recs)
	}
	if recs := serveLogs(t, cfg("-master-key", masterKey), listen("0.0.0.0:0")); warnings(recs, "LATCH_MASTER_KEY") != 0 {
		t.Fatalf("master key set: %v", recs)
	}
	recs = serveLogs(t, cfg("-allow-weak-hashing", "-argon2-memory-kib", "1024", "-argon2-time", "1"), listen("127.0.0.1:0"))
	if warnings(recs, "LATCH_ALLOW_WEAK_HASHING") != 1 || warnings(recs, "LATCH_MASTER_KEY") != 0 {
		t.Fatalf("weak hashing allowed: want one WARN naming LATCH_ALLOW_WEAK_HASHING, got %v", recs)
	}
}

func storedValues(t *testing.T, db *sql.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, q := range []string{`SELECT kid, private_key FROM signing_keys`, `SELECT name, value FROM server_secrets`,
		`SELECT id, totp_secret FROM mfa_factors WHERE totp_secret IS NOT NULL`,
		`SELECT factor_id, credential FROM mfa_webauthn_credentials`} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			var v []byte
			if err := rows.Scan(&id, &v); err != nil {
				t.Fatal(err)
			}
			out[id] = string(v)
		}
		rows.Close()
	}
	return out
}

func totpCode(t *testing.T, seed string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCode(seed, at)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func latchd(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := app.Main(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestKeysSealUpgradesAnUnsealedDatabase: a database written without a
// master key (by this release or the previous one: the format is the same)
// is refused under a master key until latchd keys seal has run; the command
// seals every signing key and server secret, is idempotent, refuses a wrong
// key, and afterwards the tokens issued before keep working.
func TestKeysSealUpgradesAnUnsealedDatabase(t *testing.T) {
	for _, d := range testutil.Dialects {
		t.Run(d, func(t *testing.T) {
			dbURL := testutil.DatabaseURL(t, d)
			old := testutil.StartURL(t, dbURL)
			ctx := context.Background()
			res, err := old.Client.SignupWithResponse(ctx, client.SignupJSONRequestBody{Email: "old@example.com", Password: "correct horse battery staple"})
			if err != nil || res.StatusCode() != 201 {
				t.Fatalf("signup: %v %s", err, res.Body)
			}
			su, err := res.JSON201.AsSignupSession()
			if err != nil {
				t.Fatal(err)
			}
			tok := &client.TokenResponse{AccessToken: su.AccessToken, RefreshToken: su.RefreshToken}
			// A TOTP factor enrolled without a master key: its seed is
			// stored unsealed too, and keys seal must seal it.
			en, err := old.Client.EnrollTOTPWithResponse(ctx, client.EnrollTOTPJSONRequestBody{}, testutil.Bearer(tok.AccessToken))
			if err != nil || en.JSON201 == nil {
				t.Fatalf("enroll TOTP: %v %s", err, en.Body)
			}
			seed := en.JSON201.Secret
			conf, err := old.Client.ConfirmTOTPWithResponse(ctx, en.JSON201.Factor.Id,
				client.ConfirmTOTPJSONRequestBody{Code: totpCode(t, seed, old.Clock.Now())}, testutil.Bearer(tok.AccessToken))
			if err != nil || conf.JSON200 == nil {
				t.Fatalf("confirm TOTP: %v %s", err, conf.Body)
			}
			tok = &conf.JSON200.Tokens
			before := storedValues(t, old.App.Store.DB())
			if len(before) != 5 {
				t.Fatalf("stored values %v, want a signing key, three server secrets and a TOTP seed", before)
			}
			for id, v := range before {
				if token.IsSealed([]byte(v)) {
					t.Fatalf("%s sealed without a master key", id)
				}
			}

			c := testutil.Config(t, dbURL)
			c.MasterKey = masterKey
			if _, err := app.New(ctx, c, nil, nil); err == nil || !strings.Contains(err.Error(), "latchd keys seal") {
				t.Fatalf("start under a master key on an unsealed database: %v, want a refusal naming latchd keys seal", err)
			}

			if code, _, stderr := latchd("keys", "seal", "-database-url", dbURL); code == 0 || !strings.Contains(stderr, "LATCH_MASTER_KEY") {
				t.Fatalf("keys seal without a master key: %d %q", code, stderr)
			}
			code, stdout, stderr := latchd("keys", "seal", "-database-url", dbURL, "-master-key", masterKey, "-log-level", "error")
			if code != 0 || !strings.Contains(stdout, "sealed 5 values (1 signing keys, 3 server secrets, 1 TOTP seeds, 0 WebAuthn credentials, 0 webhook secrets)") {
				t.Fatalf("keys seal: %d %q %q", code, stdout, stderr)
			}
			after := storedValues(t, old.App.Store.DB())
			for id, v := range after {
				if !token.IsSealed([]byte(v)) || strings.Contains(v, "PRIVATE KEY") {
					t.Fatalf("%s not sealed: %.40q", id, v)
				}
			}
			if code, stdout, _ := latchd("keys", "seal", "-database-url", dbURL, "-master-key", masterKey); code != 0 || !strings.Contains(stdout, "sealed 0 values") {
				t.Fatalf("keys seal again: %d %q", code, stdout)
			}
			if code, _, stderr := latchd("keys", "seal", "-database-url", dbURL, "-master-key", otherMasterKey); code == 0 || !strings.Contains(stderr, "cannot decrypt") {
				t.Fatalf("keys seal with another master key: %d %q", code, stderr)
			}
			if again := storedValues(t, old.App.Store.DB()); len(again) != len(after) {
				t.Fatal("rows changed")
			} else {
				for id := range after {
					if again[id] != after[id] {
						t.Fatalf("%s rewritten by a run that failed or had nothing to do", id)
					}
				}
			}

			sealed := testutil.StartURL(t, dbURL, func(c *app.Config) { c.MasterKey = masterKey })
			if me, err := sealed.Client.GetMeWithResponse(ctx, testutil.Bearer(tok.AccessToken)); err != nil || me.StatusCode() != 200 {
				t.Fatalf("an access token issued before sealing: %v %d", err, me.StatusCode())
			}
			ref, err := sealed.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: tok.RefreshToken})
			if err != nil || ref.StatusCode() != 200 {
				t.Fatalf("a refresh token issued before sealing: %v %s", err, ref.Body)
			}
			// The sealed seed still verifies: a login's second factor.
			sealed.Clock.Advance(2 * time.Minute) // past the step the enrolment spent
			li, err := sealed.Client.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: "old@example.com", Password: "correct horse battery staple"})
			if err != nil || li.JSON200 == nil || li.JSON200.Mfa == nil {
				t.Fatalf("login with a factor: %v %s", err, li.Body)
			}
			otp := totpCode(t, seed, sealed.Clock.Now())
			v, err := sealed.Client.VerifyMFAWithResponse(ctx, client.VerifyMFAJSONRequestBody{Method: client.MFAVerifyRequestMethod("totp"), Code: &otp},
				testutil.Bearer(li.JSON200.AccessToken))
			if err != nil || v.StatusCode() != 200 {
				t.Fatalf("TOTP with the sealed seed: %v %s", err, v.Body)
			}
		})
	}
}

// TestSealedDatabaseStartsWithoutSealing: a deployment that had its master
// key all along needs nothing: its values are sealed and it starts.
func TestSealedDatabaseStartsWithoutSealing(t *testing.T) {
	dbURL := testutil.DatabaseURL(t, "sqlite")
	first := testutil.StartURL(t, dbURL, func(c *app.Config) { c.MasterKey = masterKey })
	for id, v := range storedValues(t, first.App.Store.DB()) {
		if !token.IsSealed([]byte(v)) {
			t.Fatalf("%s stored unsealed under a master key", id)
		}
	}
	testutil.StartURL(t, dbURL, func(c *app.Config) { c.MasterKey = masterKey })
	if code, stdout, _ := latchd("keys", "seal", "-database-url", dbURL, "-master-key", masterKey); code != 0 || !strings.Contains(stdout, "sealed 0 values") {
		t.Fatalf("keys seal on a sealed database: %d %q", code, stdout)
	}
}

package server_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/password"
	"github.com/latchauth/latch/internal/testutil"
)

func TestSigningAlgorithms(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			s := testutil.Start(t, "sqlite", func(c *app.Config) { c.SigningAlg = alg })
			tok := signup(t, s, "alg@example.com")
			j, _ := s.Client.GetJWKSWithResponse(context.Background())
			p, err := jwt.Parse(tok.AccessToken, jwksKeyfunc(t, j.Body), jwt.WithValidMethods([]string{alg}))
			if err != nil || p.Header["alg"] != alg || p.Header["typ"] != "at+jwt" {
				t.Fatalf("token: %v %v", err, p)
			}
			if me, _ := s.Client.GetMeWithResponse(context.Background(), testutil.Bearer(tok.AccessToken)); me.StatusCode() != 200 {
				t.Fatalf("me: %d", me.StatusCode())
			}
		})
	}
}

func TestKeyRotationKeepsOldTokensValid(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		old := signup(t, s, "rotate@example.com")
		kid, err := s.App.Service.RotateSigningKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		j, _ := s.Client.GetJWKSWithResponse(ctx)
		if len(j.JSON200.Keys) != 2 {
			t.Fatalf("JWKS after rotation has %d keys", len(j.JSON200.Keys))
		}
		if me, _ := s.Client.GetMeWithResponse(ctx, testutil.Bearer(old.AccessToken)); me.StatusCode() != 200 {
			t.Fatalf("token of the retired key refused: %d", me.StatusCode())
		}
		fresh, _ := s.Client.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: "rotate@example.com", Password: goodPassword})
		p, _, _ := jwt.NewParser().ParseUnverified(fresh.JSON200.AccessToken, jwt.MapClaims{})
		if p.Header["kid"] != kid {
			t.Fatalf("new tokens signed with %v, want %s", p.Header["kid"], kid)
		}
	})
}

func TestSigningKeysEncryptedAtRest(t *testing.T) {
	dbURL := testutil.DatabaseURL(t, "sqlite")
	const master = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	s := testutil.StartURL(t, dbURL, func(c *app.Config) { c.MasterKey = master })
	signup(t, s, "sealed@example.com")
	var pk, secret []byte
	if err := s.App.Store.DB().QueryRow(`SELECT private_key FROM signing_keys`).Scan(&pk); err != nil {
		t.Fatal(err)
	}
	if err := s.App.Store.DB().QueryRow(`SELECT value FROM server_secrets`).Scan(&secret); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(pk, []byte("PRIVATE KEY")) || !bytes.HasPrefix(pk, []byte("latch-sealed-v1:")) || !bytes.HasPrefix(secret, []byte("latch-sealed-v1:")) {
		t.Fatalf("signing key stored in plain: %.40s", pk)
	}
	// A second instance without the master key refuses to start, clearly.
	c := testutil.Config(t, dbURL)
	_, err := app.New(context.Background(), c, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "LATCH_MASTER_KEY") {
		t.Fatalf("start without the master key: %v", err)
	}
	// With it, a second instance shares the key: tokens of one verify on the other.
	s2 := testutil.StartURL(t, dbURL, func(c *app.Config) { c.MasterKey = master })
	tok := signup(t, s, "shared@example.com")
	if me, _ := s2.Client.GetMeWithResponse(context.Background(), testutil.Bearer(tok.AccessToken)); me.StatusCode() != 200 {
		t.Fatalf("second instance refused the first one's token: %d", me.StatusCode())
	}
}

func TestRehashOnLoginWhenParametersGrow(t *testing.T) {
	dbURL := testutil.DatabaseURL(t, "sqlite")
	weak := testutil.StartURL(t, dbURL)
	signup(t, weak, "rehash@example.com")
	var before string
	_ = weak.App.Store.DB().QueryRow(`SELECT password_hash FROM users`).Scan(&before)
	strong := testutil.StartURL(t, dbURL, func(c *app.Config) {
		c.Argon2 = password.Params{MemoryKiB: 512, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
	})
	res, _ := strong.Client.LoginWithResponse(context.Background(), client.LoginJSONRequestBody{Email: "rehash@example.com", Password: goodPassword})
	if res.StatusCode() != 200 {
		t.Fatalf("login: %d", res.StatusCode())
	}
	var after string
	_ = strong.App.Store.DB().QueryRow(`SELECT password_hash FROM users`).Scan(&after)
	if after == before || !strings.Contains(after, "m=512,t=2,p=1") {
		t.Fatalf("not rehashed: %s -> %s", before, after)
	}
	res, _ = strong.Client.LoginWithResponse(context.Background(), client.LoginJSONRequestBody{Email: "rehash@example.com", Password: goodPassword})
	if res.StatusCode() != 200 {
		t.Fatalf("login after rehash: %d", res.StatusCode())
	}
}

func TestBadConfigurationExitsClearly(t *testing.T) {
	for env, want := range map[string]string{
		"LATCH_ACCESS_TTL=banana":      "LATCH_ACCESS_TTL",
		"LATCH_SIGNING_ALG=HS256":      "LATCH_SIGNING_ALG",
		"LATCH_DATABASE_URL=mysql://x": "LATCH_DATABASE_URL",
		"LATCH_MASTER_KEY=short":       "LATCH_MASTER_KEY",
		"LATCH_RATE_LOGIN_ACCOUNT=5":   "LATCH_RATE_LOGIN_ACCOUNT",
		"LATCH_ARGON2_MEMORY_KIB=0":    "LATCH_ARGON2",
		"LATCH_LOG_LEVEL=loud":         "LATCH_LOG_LEVEL",
	} {
		k, v, _ := strings.Cut(env, "=")
		t.Setenv(k, v)
		var stderr bytes.Buffer
		code := app.Main([]string{"serve"}, io.Discard, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), want) {
			t.Errorf("%s: exit %d, stderr %q", env, code, stderr.String())
		}
		t.Setenv(k, "")
	}
	var out bytes.Buffer
	if code := app.Main([]string{"version"}, &out, io.Discard); code != 0 || !strings.HasPrefix(out.String(), "latchd ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
}

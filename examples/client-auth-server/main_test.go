package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/client"
	"github.com/latchauth/latch/client/verify"
	"github.com/latchauth/latch/internal/testutil"
)

// TestMain lets a test run the real main in a child process.
func TestMain(m *testing.M) {
	if os.Getenv("EXAMPLE_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type tokenBody struct {
	AccessToken string `json:"accessToken"`
	ExpiresIn   int    `json:"expiresIn"`
	Error       string `json:"error"`
	RequestID   string `json:"request_id"`
}

func call(t *testing.T, method, url string) (int, tokenBody) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b tokenBody
	_ = json.NewDecoder(res.Body).Decode(&b)
	return res.StatusCode, b
}

func TestTokenEndpoint(t *testing.T) {
	ctx := context.Background()
	s := testutil.Start(t, "sqlite", testutil.Autoconfirm)
	owner, err := client.New(s.URL, client.WithClock(s.Clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.SignUp(ctx, "owner@example.com", "correct horse battery staple"); err != nil {
		t.Fatal(err)
	}
	org, err := owner.CreateOrganization(ctx, "Acme")
	if err != nil {
		t.Fatalf("create organization (issue 3): %v", err)
	}
	key, err := owner.CreateOrgAPIKey(ctx, org.Id, client.CreateAPIKeyRequest{Label: "frontend tokens", Scopes: []string{"token:exchange", "billing:read"}})
	if err != nil {
		t.Fatal(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	addr := make(chan string, 1)
	done := make(chan error, 1)
	env := map[string]string{"LATCH_API_KEY": key.Key, "LATCH_URL": s.URL}
	go func() {
		done <- run(runCtx, []string{"-addr", "127.0.0.1:0", "-scopes", "billing:read"}, func(k string) string { return env[k] }, io.Discard, hooks{
			ready:   func(a string) { addr <- a },
			now:     s.Clock.Now,
			options: []client.Option{client.WithTransport(testutil.NewValidatingTransport(t, http.DefaultTransport))},
		})
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	status, first := call(t, http.MethodGet, base+"/token")
	if status != 200 || first.AccessToken == "" || first.ExpiresIn < 14*60 || first.ExpiresIn > 15*60 {
		t.Fatalf("GET /token: %d %+v", status, first)
	}
	// The token is Latch's, for the organization, with the asked scope.
	v, err := verify.New(ctx, verify.Config{JWKSURL: s.URL + "/.well-known/jwks.json", Now: s.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	claims, err := v.Verify(ctx, first.AccessToken)
	if err != nil || claims.Scope != "billing:read" || claims.OrgID != org.Id.String() {
		t.Fatalf("claims %+v, %v", claims, err)
	}

	// Cached: POST gets the same token.
	if status, again := call(t, http.MethodPost, base+"/token"); status != 200 || again.AccessToken != first.AccessToken {
		t.Fatalf("POST /token: %d, same token %v", status, again.AccessToken == first.AccessToken)
	}
	if status, _ := call(t, http.MethodPut, base+"/token"); status != http.StatusMethodNotAllowed {
		t.Fatalf("PUT /token: %d", status)
	}

	// Near expiry the cached token, still valid, is answered at once while
	// the SDK exchanges again in the background; the new token follows.
	s.Clock.Advance(13 * time.Minute)
	status, near := call(t, http.MethodGet, base+"/token")
	if status != 200 || near.AccessToken != first.AccessToken || near.ExpiresIn > 2*60 {
		t.Fatalf("after 13 minutes: %d, same token %v, expiresIn %d", status, near.AccessToken == first.AccessToken, near.ExpiresIn)
	}
	var renewed tokenBody
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if status, renewed = call(t, http.MethodGet, base+"/token"); status != 200 || renewed.AccessToken != first.AccessToken {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the token was not renewed in the background")
		}
	}
	if status != 200 || renewed.ExpiresIn < 14*60 {
		t.Fatalf("renewed: %d, expiresIn %d", status, renewed.ExpiresIn)
	}

	// Latch's refusal is passed on with its status.
	if res, err := owner.API().RevokeOrgAPIKeyWithResponse(ctx, org.Id, key.Id); err != nil || res.StatusCode() != 204 {
		t.Fatalf("revoke the key: %v", err)
	}
	s.Clock.Advance(15 * time.Minute)
	status, refused := call(t, http.MethodGet, base+"/token")
	if status != http.StatusUnauthorized || refused.Error == "" || refused.RequestID == "" || refused.AccessToken != "" {
		t.Fatalf("with a revoked key: %d %+v", status, refused)
	}
}

func TestMissingKeyFailsAtStartup(t *testing.T) {
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0"}, func(string) string { return "" }, io.Discard, hooks{
		ready: func(string) { t.Error("listened without a key") },
	})
	if err == nil || !strings.Contains(err.Error(), "LATCH_API_KEY") {
		t.Fatalf("err = %v", err)
	}

	// The real binary exits non-zero with the message.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "EXAMPLE_RUN_MAIN=1", "LATCH_API_KEY=")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "LATCH_API_KEY is not set") {
		t.Fatalf("output: %s", out)
	}
}

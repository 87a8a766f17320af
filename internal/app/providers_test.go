package app_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchauth/latch/internal/app"
)

// LATCH_PROVIDERS and LATCH_REDIRECT_URLS: parsed, presets checked, and a
// refused value never shows a secret.
func TestProvidersConfig(t *testing.T) {
	parse := func(env map[string]string) (app.Config, error) {
		return app.ParseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	}
	good := `[{"id":"google","kind":"google","client_id":"cid","client_secret":"very-secret-value"},
		{"id":"gh","kind":"github","client_id":"cid","client_secret":"very-secret-value"}]`
	c, err := parse(map[string]string{"LATCH_PROVIDERS": good, "LATCH_REDIRECT_URLS": "https://app.example.com/cb,https://app.example.com/auth/*"})
	if err != nil || len(c.Providers) != 2 || c.Providers[0].ID != "google" || len(c.RedirectURLs) != 2 {
		t.Fatalf("good config: %+v %v", c.Providers, err)
	}
	file := filepath.Join(t.TempDir(), "providers.json")
	if err := os.WriteFile(file, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := parse(map[string]string{"LATCH_PROVIDERS_FILE": file, "LATCH_REDIRECT_URLS": "https://app.example.com/cb"}); err != nil || len(c.Providers) != 2 {
		t.Fatalf("from a file: %v", err)
	}
	for name, env := range map[string]map[string]string{
		"not JSON":        {"LATCH_PROVIDERS": `[{"id":"x","client_secret":"very-secret-value"`, "LATCH_REDIRECT_URLS": "https://a.example/cb"},
		"unknown member":  {"LATCH_PROVIDERS": `[{"id":"x","kind":"oidc","secret":"very-secret-value"}]`, "LATCH_REDIRECT_URLS": "https://a.example/cb"},
		"no redirect":     {"LATCH_PROVIDERS": good},
		"bad kind":        {"LATCH_PROVIDERS": `[{"id":"x","kind":"saml","client_id":"c","client_secret":"very-secret-value"}]`, "LATCH_REDIRECT_URLS": "https://a.example/cb"},
		"oidc no issuer":  {"LATCH_PROVIDERS": `[{"id":"x","kind":"oidc","client_id":"c","client_secret":"very-secret-value"}]`, "LATCH_REDIRECT_URLS": "https://a.example/cb"},
		"apple no key":    {"LATCH_PROVIDERS": `[{"id":"apple","kind":"apple","client_id":"c","client_secret":"very-secret-value"}]`, "LATCH_REDIRECT_URLS": "https://a.example/cb"},
		"ms common":       {"LATCH_PROVIDERS": `[{"id":"ms","kind":"microsoft","tenant":"common","client_id":"c","client_secret":"very-secret-value"}]`, "LATCH_REDIRECT_URLS": "https://a.example/cb"},
		"bad id":          {"LATCH_PROVIDERS": `[{"id":"Go ogle","kind":"google","client_id":"c","client_secret":"very-secret-value"}]`, "LATCH_REDIRECT_URLS": "https://a.example/cb"},
		"twice":           {"LATCH_PROVIDERS": `[{"id":"g","kind":"google","client_id":"c","client_secret":"very-secret-value"},{"id":"g","kind":"google","client_id":"c","client_secret":"very-secret-value"}]`, "LATCH_REDIRECT_URLS": "https://a.example/cb"},
		"prefix no slash": {"LATCH_PROVIDERS": good, "LATCH_REDIRECT_URLS": "https://app.example.com*"},
		"fragment":        {"LATCH_PROVIDERS": good, "LATCH_REDIRECT_URLS": "https://app.example.com/cb#x"},
		"both":            {"LATCH_PROVIDERS": good, "LATCH_PROVIDERS_FILE": file, "LATCH_REDIRECT_URLS": "https://a.example/cb"},
	} {
		_, err := parse(env)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "very-secret-value") {
			t.Errorf("%s: the error shows the secret: %v", name, err)
		}
	}
}

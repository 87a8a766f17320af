package server

import (
	"net/http"
	"strings"
	"testing"
)

// The flow cookie: __Host- with Secure, HttpOnly, Path=/ and no Domain
// behind https; SameSite=Lax, or None for a form_post provider (whose
// answer is a cross-site POST); named latch_flow without Secure only over
// http on a loopback address.
func TestFlowCookie(t *testing.T) {
	parse := func(raw string) *http.Cookie {
		t.Helper()
		c, err := http.ParseSetCookie(raw)
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		if strings.Contains(strings.ToLower(raw), "domain=") {
			t.Fatalf("the flow cookie names a domain: %q", raw)
		}
		return c
	}
	s := &Server{publicURL: "https://auth.example.com"}
	for formPost, want := range map[bool]http.SameSite{false: http.SameSiteLaxMode, true: http.SameSiteNoneMode} {
		c := parse(s.flowCookie("v", formPost))
		if c.Name != "__Host-latch_flow" || !c.Secure || !c.HttpOnly || c.Path != "/" || c.SameSite != want || c.MaxAge != 600 {
			t.Fatalf("https, form_post %v: %+v", formPost, c)
		}
		if got := s.browserCookie(strPtr("a"), strPtr("b")); got != "a" {
			t.Fatalf("https reads %q", got)
		}
	}
	for _, u := range []string{"http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"} {
		s := &Server{publicURL: u}
		c := parse(s.flowCookie("v", true))
		if c.Name != "latch_flow" || c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
			t.Fatalf("%s: %+v", u, c)
		}
		if got := s.browserCookie(strPtr("a"), strPtr("b")); got != "b" {
			t.Fatalf("%s reads %q", u, got)
		}
	}
	if loopbackHTTP("http://auth.example.com") || loopbackHTTP("https://127.0.0.1") {
		t.Fatal("only http on a loopback address is the exception")
	}
}

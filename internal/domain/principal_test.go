package domain

import (
	"strings"
	"testing"
)

func TestNormalizeEmail(t *testing.T) {
	cases := map[string]string{
		"  Ada@Example.COM ":            "ada@example.com",
		"ada@example.com":               "ada@example.com",
		"bad":                           "",
		"a b@example.com":               "",
		"Ada <a@b.co>":                  "",
		"@example.com":                  "",
		"x@" + strings.Repeat("a", 330): "",
	}
	for in, want := range cases {
		got, err := NormalizeEmail(in)
		if want == "" {
			if err == nil || ErrorCode(err) != CodeInvalidRequest {
				t.Errorf("NormalizeEmail(%q) = %q, %v; want invalid_request", in, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"ada@example.com", " A@B.C ", "\"quoted\"@x.y", "a@b@c", "é@ü.de", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := NormalizeEmail(s)
		if err != nil {
			return
		}
		if out != strings.ToLower(out) || strings.TrimSpace(out) != out || len(out) > 320 || !strings.Contains(out, "@") {
			t.Fatalf("NormalizeEmail(%q) = %q breaks its contract", s, out)
		}
		again, err := NormalizeEmail(out)
		if err != nil || again != out {
			t.Fatalf("NormalizeEmail is not idempotent on %q: %q %v", out, again, err)
		}
	})
}

package service

import (
	"bytes"
	"strings"
	"testing"

	"github.com/latchauth/latch/internal/domain"
)

func TestRefreshTokenFormat(t *testing.T) {
	tok, hash, err := newRefreshToken()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := DecodeRefreshToken(tok)
	if err != nil || len(raw) != 32 || len(hash) != 32 || len(tok) != 43 {
		t.Fatalf("token %q raw %d hash %d err %v", tok, len(raw), len(hash), err)
	}
	a, ah := successor([]byte("secret"), raw)
	b, bh := successor([]byte("secret"), raw)
	c, _ := successor([]byte("other secret"), raw)
	if a != b || !bytes.Equal(ah, bh) || a == c || a == tok {
		t.Fatal("successor is not a keyed deterministic function of the token")
	}
	if _, err := DecodeRefreshToken(a); err != nil {
		t.Fatalf("successor does not decode: %v", err)
	}
}

func FuzzDecodeRefreshToken(f *testing.F) {
	tok, _, _ := newRefreshToken()
	f.Add(tok)
	f.Add(strings.Repeat("A", 43))
	f.Add(strings.Repeat("_", 43))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		raw, err := DecodeRefreshToken(s)
		if err != nil {
			if domain.ErrorCode(err) != domain.CodeInvalidGrant {
				t.Fatalf("error code %q", domain.ErrorCode(err))
			}
			return
		}
		if len(raw) != 32 || len(s) != 43 {
			t.Fatalf("accepted %q", s)
		}
	})
}

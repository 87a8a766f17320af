package apikey

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"log/slog"
	"strings"
	"testing"
)

func TestGenerateParse(t *testing.T) {
	for _, kind := range []Kind{Personal, Organization} {
		seen := map[string]bool{}
		for range 200 {
			s, err := Generate(kind)
			if err != nil {
				t.Fatal(err)
			}
			key := s.Reveal()
			if len(key) != Len || !strings.HasPrefix(key, "latch_"+string(rune(kind))+"_") {
				t.Fatalf("bad key %q", key)
			}
			if seen[key] {
				t.Fatalf("duplicate key %q", key)
			}
			seen[key] = true
			p, err := Parse(key)
			if err != nil {
				t.Fatalf("Parse(%q): %v", key, err)
			}
			if p.Kind != kind || p.Hash != s.Hash() || p.Prefix != key[:DisplayLen] || p.Prefix != s.DisplayPrefix() {
				t.Fatalf("Parse(%q) = %+v", key, p)
			}
		}
	}
}

func TestParseRejects(t *testing.T) {
	s, err := Generate(Personal)
	if err != nil {
		t.Fatal(err)
	}
	good := s.Reveal()
	flip := func(i int) string {
		b := []byte(good)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	// A key whose checksum matches but whose kind is unknown.
	body := "latch_x_" + good[8:40]
	b := []byte(body + "000000")
	putChecksum(b[40:], crc32.ChecksumIEEE([]byte(body)))
	cases := map[string]string{
		"empty":              "",
		"short":              good[:Len-1],
		"long":               good + "a",
		"wrong prefix":       "latcH" + good[5:],
		"unknown kind":       string(b),
		"missing underscore": good[:7] + "x" + good[8:],
		"random part typo":   flip(20),
		"checksum typo":      flip(Len - 1),
		"non-base62":         good[:20] + "-" + good[21:],
		"non-ASCII":          good[:20] + "é" + good[22:],
		"checksum overflow":  good[:40] + "zzzzzz",
		"bearer token":       "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.e30.sig",
	}
	for name, key := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(key); err != ErrMalformed {
				t.Fatalf("Parse(%q) = %v, want ErrMalformed", key, err)
			}
		})
	}
}

// TestSecretRedacted checks that a secret cannot leak through formatting,
// logging or marshalling.
func TestSecretRedacted(t *testing.T) {
	s, err := Generate(Organization)
	if err != nil {
		t.Fatal(err)
	}
	key := s.Reveal()
	var sb strings.Builder
	log := slog.New(slog.NewJSONHandler(&sb, nil))
	log.Info("key", "key", s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), sb.String()} {
		if strings.Contains(out, key[DisplayLen:]) {
			t.Fatalf("secret leaked: %s", out)
		}
	}
	if b, err := json.Marshal(struct{ K Secret }{s}); err == nil {
		t.Fatalf("marshalled a secret: %s", b)
	}
}

func TestChecksumFitsSixDigits(t *testing.T) {
	b := make([]byte, checksumLen)
	putChecksum(b, ^uint32(0))
	var v uint64
	for _, c := range b {
		v = v*62 + uint64(digit[c])
	}
	if v != uint64(^uint32(0)) {
		t.Fatalf("max checksum round trip: %d", v)
	}
}

func FuzzParse(f *testing.F) {
	for _, k := range []Kind{Personal, Organization} {
		s, err := Generate(k)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.Reveal())
	}
	f.Add("")
	f.Add("latch_")
	f.Add("latch_u_")
	f.Add("latch_u_00000000000000000000000000000000000000")
	f.Add("latch_o_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz")
	f.Add("latch_u_4Fq9xxxxxxxxxxxxxxxxxxxxxxxxxxxx\x00\xff\xfe")
	f.Fuzz(func(t *testing.T, key string) {
		p, err := Parse(key)
		if err != nil {
			if err != ErrMalformed {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// Anything accepted must be exactly what Generate could produce.
		if len(key) != Len || (p.Kind != Personal && p.Kind != Organization) || p.Hash != HashOf(key) || p.Prefix != key[:DisplayLen] {
			t.Fatalf("accepted %q as %+v", key, p)
		}
		b := []byte(key[:bodyLen] + "000000")
		putChecksum(b[bodyLen:], checksum(b[:bodyLen]))
		if string(b) != key {
			t.Fatalf("accepted %q with a checksum other than %q", key, b)
		}
		for i := headLen; i < Len; i++ {
			if !strings.ContainsRune(alphabet, rune(key[i])) {
				t.Fatalf("accepted %q with a non-base62 character", key)
			}
		}
	})
}

func BenchmarkParseAPIKey(b *testing.B) {
	s, err := Generate(Personal)
	if err != nil {
		b.Fatal(err)
	}
	key := s.Reveal()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseAPIKeyBadChecksum(b *testing.B) {
	s, err := Generate(Personal)
	if err != nil {
		b.Fatal(err)
	}
	key := s.Reveal()
	key = key[:Len-1] + string("01"[(strings.IndexByte(alphabet, key[Len-1])+1)%2])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(key); err == nil {
			b.Fatal("accepted a bad checksum")
		}
	}
}

func BenchmarkGenerateAPIKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Generate(Organization); err != nil {
			b.Fatal(err)
		}
	}
}

package password

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/third_party/argon2"
)

var cheap = Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func newHasher(t *testing.T, p Params) *Hasher {
	t.Helper()
	h, err := NewHasher(p, 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestDefaultParamsMeetOWASP(t *testing.T) {
	if DefaultParams().MemoryKiB < 19456 || DefaultParams().Time < 2 || DefaultParams().Threads < 1 {
		t.Fatalf("default argon2id parameters below OWASP: %+v", DefaultParams())
	}
}

func TestHashIsPHCArgon2idAndVerifies(t *testing.T) {
	h := newHasher(t, cheap)
	ctx := context.Background()
	phc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("not a PHC argon2id string: %s", phc)
	}
	if strings.Contains(phc, "correct") {
		t.Fatal("hash contains the password")
	}
	ok, rehash, err := h.Verify(ctx, "correct horse battery staple", phc)
	if err != nil || !ok || rehash {
		t.Fatalf("verify = %v %v %v", ok, rehash, err)
	}
	if ok, _, _ := h.Verify(ctx, "correct horse battery stapl", phc); ok {
		t.Fatal("wrong password verified")
	}
	phc2, _ := h.Hash(ctx, "correct horse battery staple")
	if phc2 == phc {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}
}

func TestVerifyAgainstEmptyHashNeverMatches(t *testing.T) {
	h := newHasher(t, cheap)
	ok, _, err := h.Verify(context.Background(), "latch-dummy-password", "")
	if err != nil || ok {
		t.Fatalf("dummy verify = %v %v", ok, err)
	}
}

func TestRehashWhenStoredParamsAreWeaker(t *testing.T) {
	weak := newHasher(t, cheap)
	phc, _ := weak.Hash(context.Background(), "correct horse battery staple")
	strong := newHasher(t, Params{MemoryKiB: 128, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32})
	ok, rehash, err := strong.Verify(context.Background(), "correct horse battery staple", phc)
	if err != nil || !ok || !rehash {
		t.Fatalf("verify = %v rehash=%v %v", ok, rehash, err)
	}
}

func TestPolicy(t *testing.T) {
	h := newHasher(t, cheap)
	cases := map[string]struct {
		pw   string
		code domain.Code
	}{
		"too short":       {"short77", domain.CodeWeakPassword},
		"min length":      {"abcdefg1x", ""},
		"max length":      {strings.Repeat("x", MaxLength-1) + "y", ""},
		"over max":        {strings.Repeat("x", MaxLength+1), domain.CodeWeakPassword},
		"common":          {"password1", domain.CodeWeakPassword},
		"common any case": {"PassWord1", domain.CodeWeakPassword},
		"not utf8":        {"abcdefgh\xff", domain.CodeInvalidRequest},
		"unicode ok":      {"pässwörd-ünïcode", ""},
		"no composition":  {"aaaaaaaaaaaaaaaaaaaaqz", ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := h.Check(c.pw)
			if domain.ErrorCode(err) != c.code {
				t.Fatalf("Check = %v, want code %q", err, c.code)
			}
		})
	}
}

func TestLongPasswordsAreNotTruncated(t *testing.T) {
	h := newHasher(t, cheap)
	a := strings.Repeat("a", MaxLength-1) + "b"
	b := strings.Repeat("a", MaxLength-1) + "c"
	phc, _ := h.Hash(context.Background(), a)
	if ok, _, _ := h.Verify(context.Background(), b, phc); ok {
		t.Fatal("passwords differing in the last byte verified: truncation")
	}
}

func TestBlocklistHasThousands(t *testing.T) {
	h := newHasher(t, cheap)
	if n := len(h.blocklist); n < 2000 {
		t.Fatalf("blocklist has %d entries", n)
	}
}

func TestHashingConcurrencyIsBounded(t *testing.T) {
	h, err := NewHasher(Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 1, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// Hold the only slot, as a long hash would.
	m, err := h.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Hash(context.Background(), "correct horse battery staple")
	if domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Fatalf("hash with no capacity = %v, want unavailable", err)
	}
	h.release(m)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.Hash(context.Background(), "correct horse battery staple"); err != nil && domain.ErrorCode(err) != domain.CodeUnavailable {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

func TestSlotsReuseTheirMemoryAndStayCorrect(t *testing.T) {
	p := Params{MemoryKiB: 256, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
	h, err := NewHasher(p, 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pws := []string{"first password 1", "second password 2", "third password 3", "fourth password 4"}
	phcs := make([]string, len(pws))
	var wg sync.WaitGroup
	for i, pw := range pws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			phc, err := h.Hash(ctx, pw)
			if err != nil {
				t.Error(err)
			}
			phcs[i] = phc
		}()
	}
	wg.Wait()
	// Every hash was computed in memory another password had just used;
	// each verifies with its own password only.
	for i, phc := range phcs {
		for j, pw := range pws {
			ok, _, err := h.Verify(ctx, pw, phc)
			if err != nil || ok != (i == j) {
				t.Fatalf("Verify(password %d, hash %d) = %v, %v", j, i, ok, err)
			}
		}
	}
	// The same key as an independent computation: a hash made in a fresh
	// hasher's fresh memory verifies in this one's reused memory.
	other, _ := NewHasher(p, 1, time.Second)
	fresh, err := other.Hash(ctx, pws[0])
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := h.Verify(ctx, pws[0], fresh); !ok {
		t.Fatal("hash from fresh memory does not verify in reused memory")
	}
	// Two slots: at most two buffers ever, each of the configured cost.
	seen := map[*argon2.Memory]bool{}
	for range h.Concurrency() {
		m := <-h.slots
		if m != nil {
			seen[m] = true
			if m.Cap() != p.MemoryKiB {
				t.Fatalf("slot memory %d KiB, want %d", m.Cap(), p.MemoryKiB)
			}
		}
		defer func() { h.slots <- m }()
	}
	if len(seen) == 0 || len(seen) > 2 {
		t.Fatalf("%d distinct slot buffers after %d hashes on 2 slots", len(seen), 2*len(pws)*len(pws))
	}
}

func TestVerifyCostlierStoredHashLeavesSlotMemory(t *testing.T) {
	ctx := context.Background()
	strong, _ := NewHasher(Params{MemoryKiB: 512, Time: 1, Threads: 2, SaltLen: 16, KeyLen: 32}, 1, time.Second)
	phc, err := strong.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	weak, _ := NewHasher(cheap, 1, time.Second)
	if _, err := weak.Hash(ctx, "warm the slot up"); err != nil {
		t.Fatal(err)
	}
	ok, rehash, err := weak.Verify(ctx, "correct horse battery staple", phc)
	if err != nil || !ok || rehash {
		t.Fatalf("Verify = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	m := <-weak.slots
	defer func() { weak.slots <- m }()
	if m.Cap() != cheap.MemoryKiB {
		t.Fatalf("slot memory is %d KiB after verifying a 512 KiB hash, want %d", m.Cap(), cheap.MemoryKiB)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	for _, s := range []string{
		"", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA",
	} {
		if _, _, _, err := Decode(s); err == nil {
			t.Errorf("Decode(%q) accepted", s)
		}
	}
}

func FuzzDecode(f *testing.F) {
	h, _ := NewHasher(cheap, 1, time.Second)
	good, _ := h.Hash(context.Background(), "correct horse battery staple")
	f.Add(good)
	f.Add("$argon2id$v=19$m=64,t=1,p=1$$")
	f.Add("$argon2id$v=19$m=4294967295,t=1,p=255$c2FsdHNhbHQ$aGFzaA")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := Decode(s)
		if err != nil {
			return
		}
		if p.MemoryKiB > maxMemoryKiB || p.Time > maxTime || p.Threads < 1 || len(salt) < 8 || len(key) < 16 {
			t.Fatalf("Decode accepted out-of-bounds parameters: %+v", p)
		}
		if encode(p, salt, key) != s {
			t.Fatalf("decode/encode round trip differs: %q", s)
		}
	})
}

// BenchmarkHashDefaultParams is one Hash at the default parameters through
// a slot's reused memory: the raw argon2id cost plus encoding.
func BenchmarkHashDefaultParams(b *testing.B) {
	h, _ := NewHasher(DefaultParams(), 1, time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = h.Hash(context.Background(), "correct horse battery staple")
	}
}

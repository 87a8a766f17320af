// Package password hashes passwords with argon2id in PHC string form,
// verifies them and the imported formats (argon2i, bcrypt, scrypt; see
// CheckImported), and applies Latch's password policy.
package password

import (
	"bufio"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/third_party/argon2"
)

// Params are argon2id parameters.
type Params struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
	SaltLen   uint32
	KeyLen    uint32
}

// DefaultParams returns the default argon2id parameters, at least OWASP's
// recommendation.
func DefaultParams() Params {
	return Params{MemoryKiB: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// MeetsOWASPMinimum reports whether p is at least as strong as one row of
// OWASP's Password Storage Cheat Sheet minimums for argon2id (m=47104 KiB
// t=1, m=19456 t=2, m=12288 t=3, m=9216 t=4, m=7168 t=5, all with p=1): its
// memory and its time cost both reach that row's, with at least one thread.
func (p Params) MeetsOWASPMinimum() bool {
	if p.Threads < 1 {
		return false
	}
	for _, row := range [...]struct{ memoryKiB, time uint32 }{
		{47104, 1}, {19456, 2}, {12288, 3}, {9216, 4}, {7168, 5},
	} {
		if p.MemoryKiB >= row.memoryKiB && p.Time >= row.time {
			return true
		}
	}
	return false
}

// Password lengths in bytes.
const (
	MinLength = 8
	MaxLength = 1024
)

//go:embed blocklist.txt
var blocklistText string

// Hasher hashes and verifies passwords. At most Concurrency hashes run at
// once; others wait up to MaxWait and then fail with CodeUnavailable, so a
// burst of logins cannot exhaust memory.
//
// Each of the Concurrency hashing slots owns argon2id working memory of the
// configured cost, allocated when the slot first hashes and reused by every
// later hash in it, so hashing makes no large garbage: a busy Hasher holds
// Concurrency x MemoryKiB, an idle one keeps what it has used. Verifying a
// stored hash with a larger memory cost than configured allocates for that
// hash alone.
type Hasher struct {
	params    Params
	slots     chan *argon2.Memory // a token per hashing slot; nil until used
	maxWait   time.Duration
	blocklist map[string]struct{}
	dummy     string
	observer  QueueObserver
	clock     domain.Clock
}

// QueueObserver is told about the hashing queue: how long each hash or
// verification waited for a slot (zero when one was free), and each one
// that gave up after the maximum wait (CodeUnavailable). A request whose
// context ended while it waited is neither. *metrics.Metrics implements
// it; its methods must be cheap and safe for concurrent use.
type QueueObserver interface {
	HashQueueWait(d time.Duration)
	HashQueueRejected()
}

type noObserver struct{}

func (noObserver) HashQueueWait(time.Duration) {}
func (noObserver) HashQueueRejected()          {}

// An Option sets up a Hasher beyond its parameters.
type Option func(*Hasher)

// WithQueueObserver reports the hashing queue to o.
func WithQueueObserver(o QueueObserver) Option { return func(h *Hasher) { h.observer = o } }

// WithClock measures queue waits on c (default: the system clock). The
// maximum wait itself is a timer, on real time.
func WithClock(c domain.Clock) Option { return func(h *Hasher) { h.clock = c } }

// NewHasher returns a Hasher with the parameters and hashing concurrency.
func NewHasher(p Params, concurrency int, maxWait time.Duration, opts ...Option) (*Hasher, error) {
	if p.MemoryKiB < 8*uint32(p.Threads) || p.Time < 1 || p.Threads < 1 || p.SaltLen < 8 || p.KeyLen < 16 {
		return nil, fmt.Errorf("password: invalid argon2id parameters %+v", p)
	}
	if concurrency < 1 {
		concurrency = 1
	}
	h := &Hasher{params: p, slots: make(chan *argon2.Memory, concurrency), maxWait: maxWait, blocklist: map[string]struct{}{},
		observer: noObserver{}, clock: domain.SystemClock{}}
	for _, o := range opts {
		o(h)
	}
	for range concurrency {
		h.slots <- nil
	}
	sc := bufio.NewScanner(strings.NewReader(blocklistText))
	for sc.Scan() {
		if w := strings.TrimSpace(sc.Text()); w != "" {
			h.blocklist[w] = struct{}{}
		}
	}
	salt := make([]byte, p.SaltLen)
	_, _ = rand.Read(salt)
	h.dummy = encode(p, salt, argon2.IDKey([]byte("latch-dummy-password"), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen))
	return h, nil
}

// Params returns the configured parameters.
func (h *Hasher) Params() Params { return h.params }

// Concurrency returns how many hashes may run at once.
func (h *Hasher) Concurrency() int { return cap(h.slots) }

// Check applies the policy: 8 to 1024 bytes of valid UTF-8, not one of the
// most common passwords. Returns CodeWeakPassword or CodeInvalidRequest.
func (h *Hasher) Check(pw string) error {
	if !utf8.ValidString(pw) {
		return domain.Errorf(domain.CodeInvalidRequest, "password must be valid UTF-8")
	}
	if len(pw) < MinLength {
		return domain.Errorf(domain.CodeWeakPassword, "password must be at least %d bytes", MinLength)
	}
	if len(pw) > MaxLength {
		return domain.Errorf(domain.CodeWeakPassword, "password must be at most %d bytes", MaxLength)
	}
	if _, bad := h.blocklist[strings.ToLower(pw)]; bad {
		return domain.Errorf(domain.CodeWeakPassword, "password is too common")
	}
	return nil
}

// acquire takes a hashing slot and returns its working memory, allocating
// it on the slot's first use; release gives it back. It tells the observer
// how long it waited, or that it gave up.
func (h *Hasher) acquire(ctx context.Context) (*argon2.Memory, error) {
	var m *argon2.Memory
	select {
	case m = <-h.slots:
		h.observer.HashQueueWait(0)
	default:
		start := h.clock.Now()
		t := time.NewTimer(h.maxWait)
		defer t.Stop()
		select {
		case m = <-h.slots:
			h.observer.HashQueueWait(h.clock.Now().Sub(start))
		case <-t.C:
			h.observer.HashQueueRejected()
			return nil, &domain.Error{Code: domain.CodeUnavailable, Message: "the server is busy; try again", RetryAfter: time.Second}
		case <-ctx.Done():
			return nil, &domain.Error{Code: domain.CodeUnavailable, Message: "request cancelled", Err: ctx.Err()}
		}
	}
	if m == nil {
		m = argon2.NewMemory(h.params.MemoryKiB)
	}
	return m, nil
}

func (h *Hasher) release(m *argon2.Memory) { h.slots <- m }

// Hash returns the PHC string of pw with the configured parameters. It does
// not apply the policy. Returns CodeUnavailable when hashing capacity stays
// exhausted for longer than the maximum wait.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	m, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer h.release(m) // deferred: a slot is never lost, whatever happens
	key := m.IDKey([]byte(pw), salt, h.params.Time, h.params.MemoryKiB, h.params.Threads, h.params.KeyLen)
	return encode(h.params, salt, key), nil
}

// Verify reports whether pw matches the stored hash, in constant time, and
// whether the caller should rehash it with the configured parameters: a
// hash in another format than argon2id (an imported one, see
// CheckImported) always, an argon2id one whose parameters are weaker than
// configured (a stronger one is kept). Every format is verified in a hashing slot, under the same
// queue and limits as Hash. An empty phc verifies against a dummy hash,
// costing the same time, and never matches. Returns ErrUnknownFormat for a
// hash it cannot verify, CodeUnavailable when hashing capacity stays
// exhausted.
func (h *Hasher) Verify(ctx context.Context, pw, phc string) (ok, rehash bool, err error) {
	target := phc
	if target == "" {
		target = h.dummy
	}
	parsed, err := parse(target)
	if err != nil {
		return false, false, err
	}
	m, err := h.acquire(ctx)
	if err != nil {
		return false, false, err
	}
	defer h.release(m)
	ok = parsed.verify(m, pw) && phc != ""
	p := parsed.params
	rehash = parsed.format != FormatArgon2id ||
		p.MemoryKiB < h.params.MemoryKiB || p.Time < h.params.Time || p.Threads < h.params.Threads || p.KeyLen < h.params.KeyLen
	return ok, rehash, nil
}

func encode(p Params, salt, key []byte) string { return encodeArgon2(FormatArgon2id, p, salt, key) }

func encodeArgon2(variant string, p Params, salt, key []byte) string {
	b := base64.RawStdEncoding
	return fmt.Sprintf("$%s$v=%d$m=%d,t=%d,p=%d$%s$%s", variant, argon2.Version, p.MemoryKiB, p.Time, p.Threads, b.EncodeToString(salt), b.EncodeToString(key))
}

// ErrMalformed is returned by Decode for anything that is not an argon2id
// PHC string this package can verify.
var ErrMalformed = errors.New("password: malformed argon2id hash")

// Limits on decoded parameters, so a corrupt or hostile stored hash cannot
// make verification allocate without bound.
const (
	maxMemoryKiB = 4 << 20 // 4 GiB
	maxTime      = 64
	maxKeyLen    = 1024
)

// Decode parses an argon2id PHC string in its canonical form. Returns
// ErrMalformed for anything else, including parameters outside sane bounds.
func Decode(phc string) (Params, []byte, []byte, error) { return decodeArgon2(phc, FormatArgon2id) }

// decodeArgon2 is Decode for the variant (argon2id or argon2i).
func decodeArgon2(phc, variant string) (Params, []byte, []byte, error) {
	var p Params
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != variant || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, ErrMalformed
	}
	var seen [3]bool
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return p, nil, nil, ErrMalformed
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, nil, nil, ErrMalformed
		}
		switch k {
		case "m":
			p.MemoryKiB, seen[0] = uint32(n), true
		case "t":
			p.Time, seen[1] = uint32(n), true
		case "p":
			if n > 255 {
				return p, nil, nil, ErrMalformed
			}
			p.Threads, seen[2] = uint8(n), true
		default:
			return p, nil, nil, ErrMalformed
		}
	}
	if !seen[0] || !seen[1] || !seen[2] || p.Threads < 1 || p.Time < 1 || p.Time > maxTime ||
		p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxMemoryKiB {
		return p, nil, nil, ErrMalformed
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return p, nil, nil, ErrMalformed
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > maxKeyLen {
		return p, nil, nil, ErrMalformed
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	// Only the canonical form: no leading zeros, no line breaks (which the
	// base64 decoder skips), nothing that a re-encoding would not give back.
	if encodeArgon2(variant, p, salt, key) != phc {
		return p, nil, nil, ErrMalformed
	}
	return p, salt, key, nil
}

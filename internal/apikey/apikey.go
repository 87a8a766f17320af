// Package apikey is the format of Latch API keys, after GitHub's token
// design: a readable prefix that says what the key is, 32 random base62
// characters, and a base62 CRC32 checksum that lets anyone (a secret
// scanner, a client library, the server before it touches the database)
// tell a well-formed key from a typo or garbage offline.
//
//	latch_u_4Fq9xQ2... (32 random) ...Zk01aB
//	^^^^^^ ^                        ^^^^^^
//	prefix kind                     checksum
//
// The kind letter is u for a personal key and o for an organization key.
// The checksum is CRC-32 (IEEE) of everything before it (prefix, kind,
// underscore and random part), written as 6 base62 digits, most significant
// first. It is not a secret and protects nothing: it only filters out keys
// that cannot exist. The package does no I/O.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"hash/crc32"
	"log/slog"
)

// Prefix starts every key.
const Prefix = "latch_"

const (
	randomLen   = 32
	checksumLen = 6
	headLen     = len(Prefix) + 2 // "latch_u_"
	bodyLen     = headLen + randomLen
	// Len is the length of every key: 46 characters.
	Len = bodyLen + checksumLen
	// DisplayLen is the length of the display prefix stored beside the hash
	// ("latch_u_4Fq9"): enough to recognise a key, far too little to guess it.
	DisplayLen = 12
)

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Kind says who owns a key.
type Kind byte

// The kinds of key.
const (
	Personal     Kind = 'u'
	Organization Kind = 'o'
)

// String returns "personal" or "organization".
func (k Kind) String() string {
	switch k {
	case Personal:
		return "personal"
	case Organization:
		return "organization"
	}
	return "unknown"
}

// ErrMalformed is returned by Parse for anything that is not a well-formed
// key: wrong length, prefix or kind, a character outside base62, or a bad
// checksum. It deliberately does not say which.
var ErrMalformed = errors.New("apikey: malformed key")

// Hash is the SHA-256 of a whole key: the only form in which a key is
// stored or looked up.
type Hash [sha256.Size]byte

// HashOf returns the SHA-256 of the key string.
func HashOf(key string) Hash { return sha256.Sum256([]byte(key)) }

// Secret is a whole key. It is shown to its creator once and otherwise never
// leaves the process: String, GoString and LogValue redact it to its display
// prefix, and the JSON and text marshalers refuse it, so it cannot end up in
// a log line or a response by accident. Reveal returns the key itself.
// Secrets are not comparable with ==; compare hashes instead.
type Secret struct {
	_ [0]func()
	v string
}

// Reveal returns the whole key, for the one response that shows it.
func (s Secret) Reveal() string { return s.v }

// Hash returns the key's SHA-256.
func (s Secret) Hash() Hash { return HashOf(s.v) }

// DisplayPrefix returns the key's first DisplayLen characters.
func (s Secret) DisplayPrefix() string { return DisplayPrefix(s.v) }

// String returns the display prefix followed by an ellipsis.
func (s Secret) String() string { return s.DisplayPrefix() + "…" }

// GoString redacts like String.
func (s Secret) GoString() string { return "apikey.Secret(" + s.String() + ")" }

// LogValue redacts like String.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON always fails: a secret is revealed explicitly or not at all.
func (s Secret) MarshalJSON() ([]byte, error) {
	return nil, errors.New("apikey: refusing to marshal a secret")
}

// MarshalText always fails, like MarshalJSON.
func (s Secret) MarshalText() ([]byte, error) {
	return nil, errors.New("apikey: refusing to marshal a secret")
}

// DisplayPrefix returns the first DisplayLen characters of key (all of it
// when shorter).
func DisplayPrefix(key string) string {
	if len(key) < DisplayLen {
		return key
	}
	return key[:DisplayLen]
}

// Generate returns a new random key of the kind. It fails only if the
// system's random source does, or for an unknown kind.
func Generate(kind Kind) (Secret, error) {
	if kind != Personal && kind != Organization {
		return Secret{}, errors.New("apikey: unknown kind")
	}
	b := make([]byte, Len)
	copy(b, Prefix)
	b[len(Prefix)] = byte(kind)
	b[len(Prefix)+1] = '_'
	if err := randomBase62(b[headLen:bodyLen]); err != nil {
		return Secret{}, err
	}
	putChecksum(b[bodyLen:], checksum(b[:bodyLen]))
	return Secret{v: string(b)}, nil
}

// randomBase62 fills dst with uniformly random base62 characters, by
// rejection sampling so that no character is more likely than another.
func randomBase62(dst []byte) error {
	buf := make([]byte, 64)
	n := 0
	for n < len(dst) {
		if _, err := rand.Read(buf); err != nil {
			return err
		}
		for _, c := range buf {
			if c >= 248 { // 248 = 4*62: keep the draw uniform
				continue
			}
			dst[n] = alphabet[c%62]
			n++
			if n == len(dst) {
				break
			}
		}
	}
	return nil
}

func checksum(body []byte) uint32 { return crc32.ChecksumIEEE(body) }

// putChecksum writes v as len(dst) base62 digits, most significant first.
// 62^6 > 2^32, so six digits hold every CRC-32.
func putChecksum(dst []byte, v uint32) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = alphabet[v%62]
		v /= 62
	}
}

// base62 values of bytes; 0xff marks a byte outside the alphabet.
var digit = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// Parsed is a well-formed key, as Parse found it.
type Parsed struct {
	Kind Kind
	// Hash is the SHA-256 of the whole key.
	Hash Hash
	// Prefix is the display prefix.
	Prefix string
}

// Parse checks the form of a presented key: its length, prefix, kind,
// alphabet and checksum, in that order, without any I/O. Returns
// ErrMalformed for anything else.
func Parse(key string) (Parsed, error) {
	if len(key) != Len || key[:len(Prefix)] != Prefix || key[headLen-1] != '_' {
		return Parsed{}, ErrMalformed
	}
	kind := Kind(key[len(Prefix)])
	if kind != Personal && kind != Organization {
		return Parsed{}, ErrMalformed
	}
	for i := headLen; i < bodyLen; i++ {
		if digit[key[i]] == 0xff {
			return Parsed{}, ErrMalformed
		}
	}
	var sum uint64
	for i := bodyLen; i < Len; i++ {
		d := digit[key[i]]
		if d == 0xff {
			return Parsed{}, ErrMalformed
		}
		sum = sum*62 + uint64(d)
	}
	// A stack copy spares the two []byte conversions an allocation each.
	var buf [Len]byte
	copy(buf[:], key)
	if sum != uint64(checksum(buf[:bodyLen])) {
		return Parsed{}, ErrMalformed
	}
	return Parsed{Kind: kind, Hash: sha256.Sum256(buf[:]), Prefix: key[:DisplayLen]}, nil
}

package password

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"

	xargon2 "golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"

	"github.com/latchauth/latch/internal/third_party/argon2"
)

// The formats of password hashes that Latch verifies. Latch itself writes
// only FormatArgon2id; the others come from an import (POST
// /admin/users/import) and are replaced by Latch's argon2id at the user's
// first successful login.
const (
	// FormatArgon2id is the PHC string $argon2id$v=19$m=..,t=..,p=..$salt$hash
	// (salt and hash in unpadded standard base64), Latch's own format.
	FormatArgon2id = "argon2id"
	// FormatArgon2i is the same PHC string for argon2i.
	FormatArgon2i = "argon2i"
	// FormatBcrypt is a modular-crypt bcrypt hash: $2a$, $2b$ or $2y$, a
	// two-digit cost and 53 characters of salt and hash.
	FormatBcrypt = "bcrypt"
	// FormatScrypt is the PHC string $scrypt$ln=..,r=..,p=..$salt$hash of
	// passlib and the PHC reference: N = 2^ln, salt and hash in unpadded
	// standard base64 (passlib's "." for "+" is accepted too). Firebase's
	// modified scrypt (with a signer key) is not supported.
	FormatScrypt = "scrypt"
)

// Errors of CheckImported. Neither message contains the hash.
var (
	// ErrUnknownFormat is a hash in none of the supported formats, or
	// malformed in its own.
	ErrUnknownFormat = errors.New("the password hash is not in a supported format (argon2id, argon2i, bcrypt $2a$/$2b$/$2y$, scrypt PHC)")
	// ErrCostOutOfBounds is a hash whose cost parameters exceed what Latch
	// verifies (each verification would cost too much memory or time).
	ErrCostOutOfBounds = errors.New("the password hash's cost parameters are out of bounds")
)

// The bounds on the cost of an imported hash, so that an import cannot make
// every login of its users (or a guesser's attempts on them) cost
// unbounded memory or time. Each verification runs in a hashing slot; the
// memory one needs is at most MaxImportMemoryKiB.
const (
	// MaxImportMemoryKiB bounds argon2's memory and scrypt's 128·N·r bytes.
	MaxImportMemoryKiB = 256 << 10 // 256 MiB
	// MaxImportArgon2Time bounds argon2's passes.
	MaxImportArgon2Time = 16
	// MaxImportArgon2Threads bounds argon2's lanes.
	MaxImportArgon2Threads = 16
	// MaxImportBcryptCost bounds bcrypt's cost (2^cost rounds).
	MaxImportBcryptCost = 14
	// MaxImportScryptLogN bounds scrypt's N at 2^20.
	MaxImportScryptLogN = 20
	// MaxImportScryptP bounds scrypt's parallelism.
	MaxImportScryptP = 16
)

// hash is a parsed password hash of any supported format, ready to verify.
type hash struct {
	format string
	// argon2 (both variants) and scrypt.
	params    Params
	salt, key []byte
	scryptLnN int
	scryptR   int
	scryptP   int
	// bcrypt: the whole string.
	bcrypt []byte
}

// parse parses a stored hash of any supported format. Latch's own argon2id
// strings are parsed by Decode, whose bounds follow the configured
// parameters (see maxMemoryKiB); every other format must be within the
// import bounds. Returns ErrUnknownFormat or ErrCostOutOfBounds.
func parse(phc string) (*hash, error) {
	switch {
	case strings.HasPrefix(phc, "$argon2id$"):
		p, salt, key, err := Decode(phc)
		if err != nil {
			return nil, ErrUnknownFormat
		}
		return &hash{format: FormatArgon2id, params: p, salt: salt, key: key}, nil
	case strings.HasPrefix(phc, "$argon2i$"):
		p, salt, key, err := decodeArgon2(phc, FormatArgon2i)
		if err != nil {
			return nil, ErrUnknownFormat
		}
		if err := argon2Bounds(p); err != nil {
			return nil, err
		}
		return &hash{format: FormatArgon2i, params: p, salt: salt, key: key}, nil
	case strings.HasPrefix(phc, "$2a$"), strings.HasPrefix(phc, "$2b$"), strings.HasPrefix(phc, "$2y$"):
		if len(phc) != 60 {
			return nil, ErrUnknownFormat
		}
		cost, err := bcrypt.Cost([]byte(phc))
		if err != nil {
			return nil, ErrUnknownFormat
		}
		if cost > MaxImportBcryptCost {
			return nil, ErrCostOutOfBounds
		}
		return &hash{format: FormatBcrypt, bcrypt: []byte(phc)}, nil
	case strings.HasPrefix(phc, "$scrypt$"):
		return parseScrypt(phc)
	}
	return nil, ErrUnknownFormat
}

// CheckImported checks that phc is a hash Latch can verify and may accept
// from an import: a supported format, well formed, with its cost within the
// import bounds (argon2 memory at most 256 MiB, bcrypt cost at most 14,
// scrypt N at most 2^20 and 128·N·r at most 256 MiB). Returns
// ErrUnknownFormat or ErrCostOutOfBounds, whose messages never contain the
// hash.
func CheckImported(phc string) error {
	h, err := parse(phc)
	if err != nil {
		return err
	}
	if h.format == FormatArgon2id {
		return argon2Bounds(h.params)
	}
	return nil
}

func argon2Bounds(p Params) error {
	if p.MemoryKiB > MaxImportMemoryKiB || p.Time > MaxImportArgon2Time || p.Threads > MaxImportArgon2Threads {
		return ErrCostOutOfBounds
	}
	return nil
}

func parseScrypt(phc string) (*hash, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 5 || parts[0] != "" || parts[1] != "scrypt" {
		return nil, ErrUnknownFormat
	}
	var ln, r, p int
	var seen [3]bool
	for _, kv := range strings.Split(parts[2], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" || (len(v) > 1 && v[0] == '0') {
			return nil, ErrUnknownFormat
		}
		n, err := strconv.ParseUint(v, 10, 31)
		if err != nil {
			return nil, ErrUnknownFormat
		}
		switch k {
		case "ln":
			ln, seen[0] = int(n), true
		case "r":
			r, seen[1] = int(n), true
		case "p":
			p, seen[2] = int(n), true
		default:
			return nil, ErrUnknownFormat
		}
	}
	if !seen[0] || !seen[1] || !seen[2] || ln < 1 || r < 1 || p < 1 {
		return nil, ErrUnknownFormat
	}
	if ln > MaxImportScryptLogN || p > MaxImportScryptP || r > 1024 ||
		uint64(128)<<ln*uint64(r) > uint64(MaxImportMemoryKiB)<<10 {
		return nil, ErrCostOutOfBounds
	}
	salt, err1 := decodeB64(parts[3])
	key, err2 := decodeB64(parts[4])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(salt) > maxKeyLen || len(key) < 16 || len(key) > maxKeyLen {
		return nil, ErrUnknownFormat
	}
	return &hash{format: FormatScrypt, salt: salt, key: key, scryptLnN: ln, scryptR: r, scryptP: p}, nil
}

// decodeB64 decodes unpadded standard base64, also in passlib's variant
// with "." for "+".
func decodeB64(s string) ([]byte, error) {
	return base64.RawStdEncoding.Strict().DecodeString(strings.ReplaceAll(s, ".", "+"))
}

// verify reports in constant time whether pw matches h, computing argon2id
// in m (a hashing slot's memory).
func (h *hash) verify(m *argon2.Memory, pw string) bool {
	var got []byte
	switch h.format {
	case FormatArgon2id:
		got = m.IDKey([]byte(pw), h.salt, h.params.Time, h.params.MemoryKiB, h.params.Threads, uint32(len(h.key)))
	case FormatArgon2i:
		got = xargon2.Key([]byte(pw), h.salt, h.params.Time, h.params.MemoryKiB, h.params.Threads, uint32(len(h.key)))
	case FormatScrypt:
		k, err := scrypt.Key([]byte(pw), h.salt, 1<<h.scryptLnN, h.scryptR, h.scryptP, len(h.key))
		if err != nil {
			return false
		}
		got = k
	case FormatBcrypt:
		// bcrypt compares in constant time itself.
		return bcrypt.CompareHashAndPassword(h.bcrypt, []byte(pw)) == nil
	default:
		return false
	}
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

package password

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	xargon2 "golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"

	"github.com/latchauth/latch/internal/domain"
)

const importedPW = "correct horse battery staple"

func b64(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

func randSalt(t *testing.T) []byte {
	t.Helper()
	s := make([]byte, 16)
	if _, err := rand.Read(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// BcryptHash, Argon2idHash, Argon2iHash and ScryptHash make hashes of pw
// the way other systems do, with the reference libraries.
func bcryptHash(t *testing.T, pw string, cost int, prefix string) string {
	t.Helper()
	b, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		t.Fatal(err)
	}
	return prefix + string(b[4:])
}

func argon2Hash(t *testing.T, variant, pw string, m, tm uint32, p uint8) string {
	t.Helper()
	salt := randSalt(t)
	var key []byte
	if variant == "argon2i" {
		key = xargon2.Key([]byte(pw), salt, tm, m, p, 32)
	} else {
		key = xargon2.IDKey([]byte(pw), salt, tm, m, p, 32)
	}
	return fmt.Sprintf("$%s$v=19$m=%d,t=%d,p=%d$%s$%s", variant, m, tm, p, b64(salt), b64(key))
}

func scryptHash(t *testing.T, pw string, ln, r, p int) string {
	t.Helper()
	salt := randSalt(t)
	key, err := scrypt.Key([]byte(pw), salt, 1<<ln, r, p, 32)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("$scrypt$ln=%d,r=%d,p=%d$%s$%s", ln, r, p, b64(salt), b64(key))
}

// TestImportedFormatsVerifyAndAskForRehash: every supported format verifies
// the right password, refuses a wrong one, and asks to be replaced by
// Latch's argon2id.
func TestImportedFormatsVerifyAndAskForRehash(t *testing.T) {
	h := newHasher(t, cheap)
	cases := map[string]string{
		"bcrypt 2a":      bcryptHash(t, importedPW, 4, "$2a$"),
		"bcrypt 2b":      bcryptHash(t, importedPW, 5, "$2b$"),
		"bcrypt 2y":      bcryptHash(t, importedPW, 4, "$2y$"),
		"argon2id":       argon2Hash(t, "argon2id", importedPW, 256, 2, 2),
		"argon2i":        argon2Hash(t, "argon2i", importedPW, 128, 3, 1),
		"scrypt":         scryptHash(t, importedPW, 10, 8, 1),
		"scrypt p=2":     scryptHash(t, importedPW, 8, 4, 2),
		"scrypt passlib": strings.ReplaceAll(scryptHash(t, importedPW, 8, 8, 1), "+", "."),
	}
	for name, phc := range cases {
		t.Run(name, func(t *testing.T) {
			if err := CheckImported(phc); err != nil {
				t.Fatalf("CheckImported: %v", err)
			}
			ok, rehash, err := h.Verify(context.Background(), importedPW, phc)
			if err != nil || !ok {
				t.Fatalf("right password: ok=%v err=%v", ok, err)
			}
			if !rehash && !strings.HasPrefix(phc, "$argon2id$") {
				t.Fatal("an imported format must be rehashed")
			}
			if ok, _, _ := h.Verify(context.Background(), importedPW+"!", phc); ok {
				t.Fatal("wrong password verified")
			}
		})
	}
}

// TestCheckImportedRefuses: unknown formats, malformed strings and costs
// beyond the bounds are refused, and no error names the hash.
func TestCheckImportedRefuses(t *testing.T) {
	salt, key := b64(make([]byte, 16)), b64(make([]byte, 32))
	cases := map[string]struct {
		phc  string
		want error
	}{
		"empty":               {"", ErrUnknownFormat},
		"plain":               {"hunter22", ErrUnknownFormat},
		"md5 crypt":           {"$1$abcdefgh$abcdefghijklmnopqrstuv", ErrUnknownFormat},
		"sha512 crypt":        {"$6$rounds=5000$saltsalt$" + strings.Repeat("a", 86), ErrUnknownFormat},
		"bcrypt 2x":           {"$2x$10$" + strings.Repeat("a", 53), ErrUnknownFormat},
		"bcrypt short":        {"$2b$10$abc", ErrUnknownFormat},
		"bcrypt cost 15":      {"$2b$15$" + strings.Repeat("a", 53), ErrCostOutOfBounds},
		"bcrypt cost 31":      {"$2b$31$" + strings.Repeat("a", 53), ErrCostOutOfBounds},
		"argon2d":             {"$argon2d$v=19$m=64,t=1,p=1$" + salt + "$" + key, ErrUnknownFormat},
		"argon2 v16":          {"$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key, ErrUnknownFormat},
		"argon2 padded":       {"$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key, ErrUnknownFormat},
		"argon2id 512 MiB":    {"$argon2id$v=19$m=524288,t=1,p=1$" + salt + "$" + key, ErrCostOutOfBounds},
		"argon2i 512 MiB":     {"$argon2i$v=19$m=524288,t=1,p=1$" + salt + "$" + key, ErrCostOutOfBounds},
		"argon2id t=64":       {"$argon2id$v=19$m=64,t=64,p=1$" + salt + "$" + key, ErrCostOutOfBounds},
		"argon2id p=32":       {"$argon2id$v=19$m=1024,t=1,p=32$" + salt + "$" + key, ErrCostOutOfBounds},
		"scrypt ln=21":        {"$scrypt$ln=21,r=1,p=1$" + salt + "$" + key, ErrCostOutOfBounds},
		"scrypt 1 GiB":        {"$scrypt$ln=20,r=8,p=1$" + salt + "$" + key, ErrCostOutOfBounds},
		"scrypt p=17":         {"$scrypt$ln=10,r=8,p=17$" + salt + "$" + key, ErrCostOutOfBounds},
		"scrypt missing r":    {"$scrypt$ln=10,p=1$" + salt + "$" + key, ErrUnknownFormat},
		"scrypt short salt":   {"$scrypt$ln=10,r=8,p=1$" + b64([]byte("ab")) + "$" + key, ErrUnknownFormat},
		"scrypt leading zero": {"$scrypt$ln=010,r=8,p=1$" + salt + "$" + key, ErrUnknownFormat},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := CheckImported(c.phc)
			if !errors.Is(err, c.want) {
				t.Fatalf("CheckImported = %v, want %v", err, c.want)
			}
			if c.phc != "" && strings.Contains(err.Error(), c.phc) {
				t.Fatal("the error echoes the hash")
			}
		})
	}
}

// TestVerifyRefusesOutOfBoundsImportedHashes: a foreign hash beyond the
// bounds that reached the store anyhow is not computed at login.
func TestVerifyRefusesOutOfBoundsImportedHashes(t *testing.T) {
	h := newHasher(t, cheap)
	phc := "$scrypt$ln=20,r=8,p=1$" + b64(make([]byte, 16)) + "$" + b64(make([]byte, 32))
	if ok, _, err := h.Verify(context.Background(), importedPW, phc); ok || !errors.Is(err, ErrCostOutOfBounds) {
		t.Fatalf("Verify = %v, %v", ok, err)
	}
}

// TestImportedHashesWaitInTheHashingQueue: verifying a foreign hash takes a
// hashing slot like Latch's own, so a full queue refuses it.
func TestImportedHashesWaitInTheHashingQueue(t *testing.T) {
	h, err := NewHasher(cheap, 1, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	m, err := h.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, phc := range []string{bcryptHash(t, importedPW, 4, "$2b$"), scryptHash(t, importedPW, 8, 8, 1), argon2Hash(t, "argon2i", importedPW, 64, 1, 1)} {
		if _, _, err := h.Verify(context.Background(), importedPW, phc); !domain.IsCode(err, domain.CodeUnavailable) {
			t.Fatalf("Verify with every slot taken = %v, want unavailable", err)
		}
	}
	h.release(m)
	if ok, _, err := h.Verify(context.Background(), importedPW, bcryptHash(t, importedPW, 4, "$2b$")); !ok || err != nil {
		t.Fatalf("Verify with a free slot = %v, %v", ok, err)
	}
}

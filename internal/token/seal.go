package token

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// sealedPrefix marks a value encrypted by a Sealer.
const sealedPrefix = "latch-sealed-v1:"

// ErrUnsealed is returned (wrapped) by Open when a Sealer with a key is given
// a value that was stored unsealed.
var ErrUnsealed = errors.New("stored unsealed")

// SigningKeyLabel is the label a signing key's private key is sealed under.
func SigningKeyLabel(kid string) string { return "signing-key:" + kid }

// SecretLabel is the label a named server secret is sealed under.
func SecretLabel(name string) string { return "secret:" + name }

// TOTPSeedLabel is the label a TOTP factor's seed is sealed under.
func TOTPSeedLabel(factorID string) string { return "mfa-totp:" + factorID }

// WebAuthnCredentialLabel is the label a WebAuthn factor's credential
// record is sealed under.
func WebAuthnCredentialLabel(factorID string) string { return "mfa-webauthn:" + factorID }

// Sealer encrypts secrets at rest with AES-256-GCM under a master key. A
// Sealer with no key stores values as they are and refuses to open sealed
// ones; a Sealer with a key refuses to open values stored unsealed, so that
// a database row written without the key cannot stand in for a sealed one.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for a base64 (standard or URL, padded or not)
// 32-byte master key, or a pass-through Sealer when masterKey is "".
func NewSealer(masterKey string) (*Sealer, error) {
	if masterKey == "" {
		return &Sealer{}, nil
	}
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err = enc.DecodeString(masterKey); err == nil {
			break
		}
	}
	if err != nil || len(raw) != 32 {
		return nil, errors.New("the master key must be 32 bytes in base64 (for example: openssl rand -base64 32)")
	}
	blk, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain, binding it to label (for example the key id).
func (s *Sealer) Seal(plain []byte, label string) ([]byte, error) {
	if s.aead == nil {
		return plain, nil
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	ct := s.aead.Seal(nonce, nonce, plain, []byte(label))
	return []byte(sealedPrefix + base64.RawStdEncoding.EncodeToString(ct)), nil
}

// IsSealed reports whether stored is a value that Seal encrypted.
func IsSealed(stored []byte) bool { return strings.HasPrefix(string(stored), sealedPrefix) }

// Open decrypts what Seal returned for the same label. Without a master key
// it returns an unsealed value as it is and refuses a sealed one. With a
// key it refuses an unsealed value with an error wrapping ErrUnsealed that
// tells the operator to run latchd keys seal, and a sealed value that does
// not decrypt under this key and label.
func (s *Sealer) Open(stored []byte, label string) ([]byte, error) {
	str := string(stored)
	if !strings.HasPrefix(str, sealedPrefix) {
		if s.aead != nil {
			return nil, fmt.Errorf("%s is %w although LATCH_MASTER_KEY is set: run `latchd keys seal` once, with this LATCH_MASTER_KEY, to encrypt the stored values", label, ErrUnsealed)
		}
		return stored, nil
	}
	if s.aead == nil {
		return nil, fmt.Errorf("%s is encrypted at rest: set LATCH_MASTER_KEY", label)
	}
	ct, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(str, sealedPrefix))
	if err != nil || len(ct) < s.aead.NonceSize() {
		return nil, fmt.Errorf("%s: corrupt sealed value", label)
	}
	plain, err := s.aead.Open(nil, ct[:s.aead.NonceSize()], ct[s.aead.NonceSize():], []byte(label))
	if err != nil {
		return nil, fmt.Errorf("%s: cannot decrypt with this LATCH_MASTER_KEY", label)
	}
	return plain, nil
}

// SealStored is what latchd keys seal does to one stored value: an unsealed
// value is returned sealed under label, with true; a sealed one is returned
// as it is, with false, once it has been checked to open under this key and
// label, so that sealing twice changes nothing and a wrong master key is
// noticed before anything is written. Returns an error when the Sealer has
// no key or a sealed value does not open.
func (s *Sealer) SealStored(stored []byte, label string) ([]byte, bool, error) {
	if s.aead == nil {
		return nil, false, errors.New("no master key: set LATCH_MASTER_KEY to seal stored values")
	}
	if IsSealed(stored) {
		if _, err := s.Open(stored, label); err != nil {
			return nil, false, err
		}
		return stored, false, nil
	}
	sealed, err := s.Seal(stored, label)
	if err != nil {
		return nil, false, err
	}
	return sealed, true, nil
}

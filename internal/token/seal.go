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

// Sealer encrypts secrets at rest with AES-256-GCM under a master key. A
// Sealer with no key stores values as they are and refuses to open sealed
// ones.
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

// Open decrypts what Seal returned for the same label; a value that was
// stored unsealed is returned as it is.
func (s *Sealer) Open(stored []byte, label string) ([]byte, error) {
	str := string(stored)
	if !strings.HasPrefix(str, sealedPrefix) {
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

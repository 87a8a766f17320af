package service

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"

	"github.com/latchauth/latch/internal/domain"
)

// refreshTokenBytes is the entropy of a refresh token: 256 bits.
const refreshTokenBytes = 32

// refreshTokenLen is the length of an encoded refresh token.
var refreshTokenLen = base64.RawURLEncoding.EncodedLen(refreshTokenBytes)

// newRefreshToken returns a random refresh token and the hash to store.
func newRefreshToken() (string, []byte, error) {
	raw := make([]byte, refreshTokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, err
	}
	h := sha256.Sum256(raw)
	return base64.RawURLEncoding.EncodeToString(raw), h[:], nil
}

// DecodeRefreshToken checks the form of a presented refresh token and
// returns its raw bytes. Returns CodeInvalidGrant for anything that is not
// 43 characters of unpadded base64url encoding 32 bytes.
func DecodeRefreshToken(tok string) ([]byte, error) {
	if len(tok) != refreshTokenLen {
		return nil, domain.Errorf(domain.CodeInvalidGrant, "the refresh token is invalid, expired or revoked")
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	if err != nil || len(raw) != refreshTokenBytes {
		return nil, domain.Errorf(domain.CodeInvalidGrant, "the refresh token is invalid, expired or revoked")
	}
	return raw, nil
}

// hashRefreshToken decodes a presented refresh token (DecodeRefreshToken)
// and returns its raw bytes and the SHA-256 the store keeps of it: the one
// way a presented refresh token is turned into its stored form.
func hashRefreshToken(tok string) ([]byte, [sha256.Size]byte, error) {
	raw, err := DecodeRefreshToken(tok)
	if err != nil {
		return nil, [sha256.Size]byte{}, err
	}
	return raw, sha256.Sum256(raw), nil
}

// successor derives the token that replaces raw: an HMAC under the shared
// server secret, so a retried refresh can be answered with the same token
// although only hashes are stored.
func successor(secret, raw []byte) (string, []byte) {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("latch refresh successor v1\x00"))
	m.Write(raw)
	next := m.Sum(nil)
	h := sha256.Sum256(next)
	return base64.RawURLEncoding.EncodeToString(next), h[:]
}

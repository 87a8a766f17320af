package domain

import "context"

// TokenLookupStore answers what introspection and revocation need to know
// about a refresh token without spending it.
type TokenLookupStore interface {
	// RefreshTokenSession returns the session of the refresh token whose
	// SHA-256 is hash, and whether the token itself is live: neither spent
	// nor revoked. Returns CodeNotFound for an unknown token.
	RefreshTokenSession(ctx context.Context, hash []byte) (*Session, bool, error)
}

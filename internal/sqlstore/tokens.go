package sqlstore

import (
	"context"

	"github.com/latchauth/latch/internal/domain"
)

// RefreshTokenSession returns the session of the refresh token with the
// hash and whether the token is neither spent nor revoked. It only reads:
// introspecting a token must not spend it. Returns CodeNotFound for an
// unknown token.
func (s *Store) RefreshTokenSession(ctx context.Context, hash []byte) (*domain.Session, bool, error) {
	var r struct {
		sessionRow
		TokenUsedAt    nts `db:"token_used_at"`
		TokenRevokedAt nts `db:"token_revoked_at"`
	}
	err := s.get(ctx, &r, `SELECT `+prefixed("s", sessionCols, false)+`,
		t.used_at AS token_used_at, t.revoked_at AS token_revoked_at
		FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = ?`, hash)
	if err != nil {
		return nil, false, translate(err)
	}
	sess := r.sessionRow.domain()
	return &sess, !r.TokenUsedAt.Valid && !r.TokenRevokedAt.Valid, nil
}

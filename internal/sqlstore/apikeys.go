package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/latchauth/latch/internal/domain"
)

type apiKeyRow struct {
	ID         uuid.UUID     `db:"id"`
	KeyHash    []byte        `db:"key_hash"`
	Prefix     string        `db:"prefix"`
	UserID     uuid.NullUUID `db:"user_id"`
	OrgID      uuid.NullUUID `db:"org_id"`
	CreatedBy  uuid.NullUUID `db:"created_by"`
	Label      string        `db:"label"`
	Scopes     string        `db:"scopes"`
	CreatedAt  ts            `db:"created_at"`
	ExpiresAt  nts           `db:"expires_at"`
	LastUsedAt nts           `db:"last_used_at"`
	RevokedAt  nts           `db:"revoked_at"`
	RolledTo   uuid.NullUUID `db:"rolled_to"`
	// OwnerBannedUntil is read by the authentication lookups only
	// (apiKeyAuthCols).
	OwnerBannedUntil nts `db:"owner_banned_until"`
}

const apiKeyCols = `id, key_hash, prefix, user_id, org_id, created_by, label, scopes, created_at, expires_at, last_used_at, revoked_at, rolled_to`

// apiKeyAuthCols are the columns of the lookups that authentication uses:
// the key with its owner's ban, in the same indexed read.
const apiKeyAuthCols = apiKeyCols + `, (SELECT u.banned_until FROM users u WHERE u.id = api_keys.user_id) AS owner_banned_until`

func (r *apiKeyRow) domain() *domain.APIKey {
	k := &domain.APIKey{
		ID:         r.ID,
		UserID:     ptrUUID(r.UserID),
		OrgID:      ptrUUID(r.OrgID),
		CreatedBy:  ptrUUID(r.CreatedBy),
		Label:      r.Label,
		Scopes:     []string{},
		Prefix:     r.Prefix,
		Hash:       r.KeyHash,
		CreatedAt:  time.Time(r.CreatedAt),
		ExpiresAt:  r.ExpiresAt.ptr(),
		LastUsedAt: r.LastUsedAt.ptr(),
		RevokedAt:  r.RevokedAt.ptr(),
		RolledTo:   ptrUUID(r.RolledTo),

		OwnerBannedUntil: r.OwnerBannedUntil.ptr(),
	}
	if r.Scopes != "" {
		// Scopes never hold spaces (their pattern forbids it), so a space
		// joins them portably in both databases.
		k.Scopes = strings.Split(r.Scopes, " ")
	}
	return k
}

// ownerCond is the WHERE condition, with its argument, that selects the
// owner's keys.
func ownerCond(o domain.KeyOwner) (string, any) {
	if o.OrgID != uuid.Nil {
		return "org_id = ?", o.OrgID
	}
	return "user_id = ?", o.UserID
}

func (s *Store) insertAPIKey(ctx context.Context, tx *sqlx.Tx, k *domain.APIKey) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO api_keys (`+apiKeyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		k.ID, k.Hash, k.Prefix, nullUUID(k.UserID), nullUUID(k.OrgID), nullUUID(k.CreatedBy), k.Label,
		strings.Join(k.Scopes, " "), ts(k.CreatedAt), ntsOf(k.ExpiresAt), ntsOf(k.LastUsedAt), ntsOf(k.RevokedAt), nullUUID(k.RolledTo))
	return err
}

// CreateAPIKey stores a new key.
func (s *Store) CreateAPIKey(ctx context.Context, k *domain.APIKey) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error { return s.insertAPIKey(ctx, tx, k) })
}

// APIKeyByHash returns the key with the hash, through the unique index on
// key_hash. Returns CodeNotFound if there is none.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (*domain.APIKey, error) {
	var r apiKeyRow
	if err := s.get(ctx, &r, `SELECT `+apiKeyAuthCols+` FROM api_keys WHERE key_hash = ?`, hash); err != nil {
		return nil, translate(err)
	}
	return r.domain(), nil
}

// APIKeyByID returns the key. Returns CodeNotFound if there is none.
func (s *Store) APIKeyByID(ctx context.Context, id uuid.UUID) (*domain.APIKey, error) {
	var r apiKeyRow
	if err := s.get(ctx, &r, `SELECT `+apiKeyAuthCols+` FROM api_keys WHERE id = ?`, id); err != nil {
		return nil, translate(err)
	}
	return r.domain(), nil
}

// ListAPIKeys returns up to limit keys of the owner (only those created by
// createdBy when it is not nil) after the cursor, newest first.
func (s *Store) ListAPIKeys(ctx context.Context, owner domain.KeyOwner, createdBy *uuid.UUID, after *domain.Cursor, limit int) ([]domain.APIKey, error) {
	cond, arg := ownerCond(owner)
	args := []any{arg}
	if createdBy != nil {
		cond += ` AND created_by = ?`
		args = append(args, *createdBy)
	}
	pc, pargs := pageCond(after, true)
	var rows []apiKeyRow
	if err := s.db.SelectContext(ctx, &rows, s.q(`SELECT `+apiKeyCols+` FROM api_keys WHERE `+cond+pc+`
		ORDER BY created_at DESC, id DESC LIMIT ?`), append(append(args, pargs...), limit)...); err != nil {
		return nil, translate(err)
	}
	out := make([]domain.APIKey, len(rows))
	for i := range rows {
		out[i] = *rows[i].domain()
	}
	return out, nil
}

// RevokeAPIKey revokes the owner's key and returns it; a revoked key keeps
// its first revocation time. Returns CodeNotFound if the owner has no such
// key.
func (s *Store) RevokeAPIKey(ctx context.Context, owner domain.KeyOwner, id uuid.UUID, now time.Time) (*domain.APIKey, error) {
	cond, arg := ownerCond(owner)
	var r apiKeyRow
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &r, s.q(`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?)
			WHERE id = ? AND `+cond+` RETURNING `+apiKeyCols), ts(now), id, arg)
	})
	if domain.IsCode(err, domain.CodeNotFound) {
		return nil, domain.Errorf(domain.CodeNotFound, "API key not found")
	}
	if err != nil {
		return nil, err
	}
	return r.domain(), nil
}

// RollAPIKey stores next as the successor of the owner's active key. The
// conditional UPDATE (active and not yet rolled) has exactly one winner, so
// two concurrent rolls of one key never both succeed. Returns CodeNotFound if
// the owner has no such key and CodeConflict if it is revoked, expired or
// already rolled.
func (s *Store) RollAPIKey(ctx context.Context, owner domain.KeyOwner, id uuid.UUID, next *domain.APIKey, now time.Time, overlap time.Duration) (*domain.APIKey, error) {
	cond, arg := ownerCond(owner)
	var r apiKeyRow
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		const active = ` AND revoked_at IS NULL AND rolled_to IS NULL AND (expires_at IS NULL OR expires_at > ?) RETURNING ` + apiKeyCols
		var err error
		if overlap <= 0 {
			err = tx.GetContext(ctx, &r, s.q(`UPDATE api_keys SET rolled_to = ?, revoked_at = ?
				WHERE id = ? AND `+cond+active), next.ID, ts(now), id, arg, ts(now))
		} else {
			end := now.Add(overlap)
			err = tx.GetContext(ctx, &r, s.q(`UPDATE api_keys SET rolled_to = ?,
				expires_at = CASE WHEN expires_at IS NOT NULL AND expires_at < ? THEN expires_at ELSE ? END
				WHERE id = ? AND `+cond+active), next.ID, ts(end), ts(end), id, arg, ts(now))
		}
		if domain.IsCode(translate(err), domain.CodeNotFound) {
			var n int
			if err := tx.GetContext(ctx, &n, s.q(`SELECT COUNT(*) FROM api_keys WHERE id = ? AND `+cond), id, arg); err != nil {
				return err
			}
			if n == 0 {
				return domain.Errorf(domain.CodeNotFound, "API key not found")
			}
			return domain.Errorf(domain.CodeConflict, "the API key is revoked, expired or already rolled")
		}
		if err != nil {
			return err
		}
		return s.insertAPIKey(ctx, tx, next)
	})
	if err != nil {
		return nil, err
	}
	return r.domain(), nil
}

func (s *Store) revokeKeysWhere(ctx context.Context, tx *sqlx.Tx, cond string, now time.Time, args ...any) ([]domain.APIKey, error) {
	var rows []apiKeyRow
	if err := tx.SelectContext(ctx, &rows, s.q(`UPDATE api_keys SET revoked_at = ?
		WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) AND `+cond+` RETURNING `+apiKeyCols),
		append([]any{ts(now), ts(now)}, args...)...); err != nil {
		return nil, err
	}
	out := make([]domain.APIKey, len(rows))
	for i := range rows {
		out[i] = *rows[i].domain()
	}
	return out, nil
}

// revokeUserAPIKeysTx revokes every active personal key of the user.
func (s *Store) revokeUserAPIKeysTx(ctx context.Context, tx *sqlx.Tx, userID uuid.UUID, now time.Time) ([]domain.APIKey, error) {
	return s.revokeKeysWhere(ctx, tx, `user_id = ?`, now, userID)
}

// RevokeUserAPIKeys revokes every active personal key of the user and
// returns them.
func (s *Store) RevokeUserAPIKeys(ctx context.Context, userID uuid.UUID, now time.Time) ([]domain.APIKey, error) {
	var keys []domain.APIKey
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) (err error) {
		keys, err = s.revokeUserAPIKeysTx(ctx, tx, userID, now)
		return err
	})
	return keys, err
}

// RevokeAPIKeysByCreator revokes every active key of the organization that
// the user created and returns them.
func (s *Store) RevokeAPIKeysByCreator(ctx context.Context, orgID, creator uuid.UUID, now time.Time) ([]domain.APIKey, error) {
	var keys []domain.APIKey
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) (err error) {
		keys, err = s.revokeKeysWhere(ctx, tx, `org_id = ? AND created_by = ?`, now, orgID, creator)
		return err
	})
	return keys, err
}

// CountActiveAPIKeys returns how many keys of the owner are neither
// revoked nor expired at now.
func (s *Store) CountActiveAPIKeys(ctx context.Context, owner domain.KeyOwner, now time.Time) (int, error) {
	cond, arg := ownerCond(owner)
	var n int
	if err := s.get(ctx, &n, `SELECT COUNT(*) FROM api_keys WHERE `+cond+` AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)`,
		arg, ts(now)); err != nil {
		return 0, translate(err)
	}
	return n, nil
}

// TouchAPIKey sets last_used_at to now unless it was set less than every
// ago. The condition is in the UPDATE, so instances that race write once.
func (s *Store) TouchAPIKey(ctx context.Context, id uuid.UUID, now time.Time, every time.Duration) (bool, error) {
	res, err := s.exec(ctx, `UPDATE api_keys SET last_used_at = ?
		WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)`, ts(now), id, ts(now.Add(-every)))
	if err != nil {
		return false, translate(err)
	}
	n, err := res.RowsAffected()
	return n == 1, translate(err)
}

package sqlstore

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/latchauth/latch/internal/domain"
)

type signingKeyRow struct {
	KID        string `db:"kid"`
	Alg        string `db:"alg"`
	PrivateKey []byte `db:"private_key"`
	CreatedAt  ts     `db:"created_at"`
	RetiredAt  nts    `db:"retired_at"`
	Activates  nts    `db:"activates_at"`
}

// SigningKeys returns every key not retired before since, newest first.
func (s *Store) SigningKeys(ctx context.Context, since time.Time) ([]domain.SigningKey, error) {
	var rows []signingKeyRow
	err := s.db.SelectContext(ctx, &rows, s.q(`SELECT kid, alg, private_key, created_at, retired_at, activates_at FROM signing_keys
		WHERE retired_at IS NULL OR retired_at > ? ORDER BY created_at DESC, kid DESC`), ts(since))
	if err != nil {
		return nil, translate(err)
	}
	out := make([]domain.SigningKey, len(rows))
	for i, r := range rows {
		out[i] = domain.SigningKey{KID: r.KID, Alg: r.Alg, PrivatePEM: r.PrivateKey, CreatedAt: time.Time(r.CreatedAt),
			RetiredAt: r.RetiredAt.ptr(), ActivatesAt: r.Activates.ptr()}
	}
	return out, nil
}

// AddSigningKey stores a new key, published at once; every older
// unretired key retires when the new one activates (k.ActivatesAt, or
// k.CreatedAt when nil), so until then they keep signing.
func (s *Store) AddSigningKey(ctx context.Context, k domain.SigningKey) error {
	at := k.CreatedAt
	if k.ActivatesAt != nil {
		at = *k.ActivatesAt
	}
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL`), ts(at)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO signing_keys (kid, alg, private_key, created_at, activates_at) VALUES (?, ?, ?, ?, ?)`),
			k.KID, k.Alg, k.PrivatePEM, ts(k.CreatedAt), ntsOf(k.ActivatesAt))
		return err
	})
}

// EnsureSigningKey stores k only when no unretired key of its algorithm
// exists, and reports whether it did.
func (s *Store) EnsureSigningKey(ctx context.Context, k domain.SigningKey) (bool, error) {
	var added bool
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if s.dialect == Postgres {
			// Serialise first starts of several instances.
			if _, err := tx.ExecContext(ctx, `LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE`); err != nil {
				return err
			}
		}
		var n int
		// Any unretired key counts, whatever its algorithm: a start with
		// another LATCH_SIGNING_ALG must not replace the deployment's keys
		// (the service refuses to start instead).
		if err := tx.GetContext(ctx, &n, s.q(`SELECT COUNT(*) FROM signing_keys WHERE retired_at IS NULL`)); err != nil {
			return err
		}
		if n > 0 {
			added = false
			return nil
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO signing_keys (kid, alg, private_key, created_at) VALUES (?, ?, ?, ?)`),
			k.KID, k.Alg, k.PrivatePEM, ts(k.CreatedAt))
		added = err == nil
		return err
	})
	return added, err
}

// Secret returns the named server secret, storing value (created at now)
// first if there is none yet; concurrent callers all get the one stored
// value.
func (s *Store) Secret(ctx context.Context, name string, value []byte, now time.Time) ([]byte, error) {
	var out []byte
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`),
			name, value, ts(now)); err != nil {
			return err
		}
		return tx.GetContext(ctx, &out, s.q(`SELECT value FROM server_secrets WHERE name = ?`), name)
	})
	return out, err
}

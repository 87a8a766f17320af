package sqlstore

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// Reseal rewrites one stored secret: given the row's id and its stored
// value, it returns the value to store and whether it differs. An error
// aborts the whole table.
type Reseal func(id string, stored []byte) ([]byte, bool, error)

// SealSigningKeys passes every signing key's stored private key (id: the
// kid) through reseal and writes back those it changed, in one transaction,
// and returns how many it wrote. It writes nothing when reseal fails.
func (s *Store) SealSigningKeys(ctx context.Context, reseal Reseal) (int, error) {
	return s.resealColumn(ctx, "signing_keys", "kid", "private_key", reseal)
}

// SealServerSecrets passes every server secret's stored value (id: its
// name) through reseal and writes back those it changed, in one
// transaction, and returns how many it wrote. It writes nothing when reseal
// fails.
func (s *Store) SealServerSecrets(ctx context.Context, reseal Reseal) (int, error) {
	return s.resealColumn(ctx, "server_secrets", "name", "value", reseal)
}

// SealTOTPSeeds passes every TOTP factor's stored seed (id: the factor id)
// through reseal like SealSigningKeys.
func (s *Store) SealTOTPSeeds(ctx context.Context, reseal Reseal) (int, error) {
	return s.resealColumn(ctx, "mfa_factors", "id", "totp_secret", reseal)
}

// SealWebAuthnCredentials passes every WebAuthn factor's stored credential
// record (id: the factor id) through reseal like SealSigningKeys.
func (s *Store) SealWebAuthnCredentials(ctx context.Context, reseal Reseal) (int, error) {
	return s.resealColumn(ctx, "mfa_webauthn_credentials", "factor_id", "credential", reseal)
}

// SealWebhookSecrets passes every webhook endpoint's stored secrets, the
// current and the previous one (id: the endpoint id), through reseal like
// SealSigningKeys, and returns how many values it wrote.
func (s *Store) SealWebhookSecrets(ctx context.Context, reseal Reseal) (int, error) {
	n, err := s.resealColumn(ctx, "webhook_endpoints", "id", "secret", reseal)
	if err != nil {
		return n, err
	}
	m, err := s.resealColumn(ctx, "webhook_endpoints", "id", "previous_secret", reseal)
	return n + m, err
}

// resealColumn does the Seal methods; rows whose value is NULL are skipped; table and the
// column names are constants of this package, never input. The rows are
// locked on PostgreSQL (SQLite's write transaction holds the database), so
// a value written meanwhile by a starting instance is not overwritten.
func (s *Store) resealColumn(ctx context.Context, table, idCol, valCol string, reseal Reseal) (int, error) {
	var n int
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		n = 0
		lock := s.rowLock(" FOR UPDATE")
		var rows []struct {
			ID    string `db:"id"`
			Value []byte `db:"value"`
		}
		if err := tx.SelectContext(ctx, &rows, fmt.Sprintf(`SELECT %s AS id, %s AS value FROM %s WHERE %s IS NOT NULL ORDER BY %s%s`,
			idCol, valCol, table, valCol, idCol, lock)); err != nil {
			return err
		}
		for _, r := range rows {
			v, changed, err := reseal(r.ID, r.Value)
			if err != nil {
				return fmt.Errorf("%s %q: %w", table, r.ID, err)
			}
			if !changed {
				continue
			}
			if _, err := tx.ExecContext(ctx, s.q(fmt.Sprintf(`UPDATE %s SET %s = ? WHERE %s = ?`, table, valCol, idCol)), v, r.ID); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

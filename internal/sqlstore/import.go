package sqlstore

import (
	"context"

	"github.com/jmoiron/sqlx"

	"github.com/latchauth/latch/internal/domain"
)

// ImportUser stores an imported password account and emits its
// user.created event (with imported: true) in one transaction. Returns
// CodeConflict if the email is in use.
func (s *Store) ImportUser(ctx context.Context, u *domain.User) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if err := s.insertUser(ctx, tx, u); err != nil {
			return err
		}
		return s.emit(ctx, tx, &domain.OutboundEvent{Type: domain.OutUserCreated, UserID: &u.ID, CreatedAt: u.UpdatedAt,
			Data: map[string]any{"user_id": u.ID.String(), "email": u.Email, "imported": true}})
	})
}

// ExportUsers returns up to limit password accounts (not delegated
// identities) after the cursor, oldest first.
func (s *Store) ExportUsers(ctx context.Context, after *domain.Cursor, limit int) ([]domain.User, error) {
	var rows []userRow
	pc, pargs := pageCond(after, false)
	err := s.db.SelectContext(ctx, &rows, s.q(`SELECT `+userReadCols+` FROM users
		WHERE org_id IS NULL`+pc+`
		ORDER BY created_at, id LIMIT ?`), append(pargs, limit)...)
	if err != nil {
		return nil, translate(err)
	}
	out := make([]domain.User, len(rows))
	for i := range rows {
		out[i] = *rows[i].domain()
	}
	return out, nil
}

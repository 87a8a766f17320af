package service

import (
	"context"

	"github.com/latchauth/latch/internal/domain"
)

// UserImportStore is the storage that importing and exporting users
// needs; the SQL store implements it. Methods return the codes documented
// and anything else only for a storage failure.
type UserImportStore interface {
	// ImportUser stores an imported password account and emits its
	// user.created event in one transaction. Returns CodeConflict if the
	// email is in use.
	ImportUser(ctx context.Context, u *domain.User) error
	// ExportUsers returns up to limit password accounts after the cursor,
	// oldest first.
	ExportUsers(ctx context.Context, after *domain.Cursor, limit int) ([]domain.User, error)
}

package service

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/password"
)

// MaxImportUsers is the most users one import request may hold.
const MaxImportUsers = 1000

// ImportRecord is one user of an import.
type ImportRecord struct {
	Email         string
	EmailVerified bool
	// PasswordHash is the user's hash in a format password.CheckImported
	// accepts; "" for none (no password login until a reset).
	PasswordHash string
	ExternalID   string
	// CreatedAt is when the account was created elsewhere; nil (or a time
	// in the future) is now.
	CreatedAt *time.Time
	// AppMetadata and UserMetadata are the user's metadata, as JSON
	// objects. This release has nowhere to store them (the users' metadata
	// columns come with the admin users API), so a record carrying a
	// non-empty one is refused rather than imported without it.
	AppMetadata, UserMetadata map[string]any
}

// ImportResult is what became of one record: the new user's id, or Err
// (CodeConflict for an email in use).
type ImportResult struct {
	Index int
	ID    uuid.UUID
	Err   error
}

// UserImport imports users from other systems, with their password hashes,
// and exports them without secrets; the operator gate is the HTTP layer's.
// It is safe for concurrent use.
type UserImport struct {
	store UserImportStore
	clock domain.Clock
}

// NewUserImport returns the import and export service.
func NewUserImport(sh Shared, store UserImportStore) *UserImport {
	return &UserImport{store: store, clock: sh.Clock}
}

// ImportUsers checks every record first and refuses the whole request,
// storing nothing, with CodeInvalidRequest naming the first bad record's
// index (and never its hash): a malformed email, a hash in no supported
// format or with cost parameters beyond the bounds, metadata (which this
// release cannot store), too many or no records. It then stores each record in its own transaction, with its
// user.created event, and returns one result per record in order and how
// many were created; an email already in use (also by an earlier record)
// is that record's CodeConflict. A storage failure stops the import and
// is returned: the records before it are stored, and importing again
// answers them conflict.
func (im *UserImport) ImportUsers(ctx context.Context, recs []ImportRecord) (int, []ImportResult, error) {
	if len(recs) == 0 || len(recs) > MaxImportUsers {
		return 0, nil, domain.Errorf(domain.CodeInvalidRequest, "an import holds 1 to %d users", MaxImportUsers)
	}
	now := im.clock.Now()
	users := make([]*domain.User, len(recs))
	for i, r := range recs {
		email, err := domain.NormalizeEmail(r.Email)
		if err != nil {
			return 0, nil, domain.Errorf(domain.CodeInvalidRequest, "users[%d].email: %s", i, domain.ErrorMessage(err))
		}
		if len(r.AppMetadata) > 0 || len(r.UserMetadata) > 0 {
			return 0, nil, domain.Errorf(domain.CodeInvalidRequest, "users[%d]: app_metadata and user_metadata are not stored by this release", i)
		}
		if r.PasswordHash != "" {
			if err := password.CheckImported(r.PasswordHash); err != nil {
				return 0, nil, domain.Errorf(domain.CodeInvalidRequest, "users[%d].password_hash: %s", i, err.Error())
			}
		}
		created := now
		if r.CreatedAt != nil && !r.CreatedAt.IsZero() && r.CreatedAt.Before(now) {
			created = *r.CreatedAt
		}
		users[i] = &domain.User{ID: uuid.New(), Email: email, EmailVerified: r.EmailVerified, PasswordHash: r.PasswordHash,
			ExternalID: r.ExternalID, CreatedAt: created, UpdatedAt: now}
	}
	results := make([]ImportResult, len(users))
	n := 0
	for i, u := range users {
		results[i].Index = i
		switch err := im.store.ImportUser(ctx, u); {
		case err == nil:
			results[i].ID = u.ID
			n++
		case domain.IsCode(err, domain.CodeConflict):
			results[i].Err = domain.Errorf(domain.CodeConflict, "an account with this email already exists")
		default:
			return n, nil, fmt.Errorf("import users[%d]: %w", i, err)
		}
	}
	return n, results, nil
}

// ExportUsers returns a page of the password accounts, oldest first; the
// caller must never export their secrets.
func (im *UserImport) ExportUsers(ctx context.Context, page PageRequest) ([]domain.User, *domain.Cursor, error) {
	return listPage(page, func(after *domain.Cursor, limit int) ([]domain.User, error) {
		return im.store.ExportUsers(ctx, after, limit)
	}, func(u *domain.User) domain.Cursor { return domain.Cursor{CreatedAt: u.CreatedAt, ID: u.ID} })
}

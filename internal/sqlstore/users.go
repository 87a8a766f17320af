package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/latchauth/latch/internal/domain"
)

type userRow struct {
	ID            uuid.UUID      `db:"id"`
	Email         sql.NullString `db:"email"`
	EmailVerified bool           `db:"email_verified"`
	PasswordHash  sql.NullString `db:"password_hash"`
	OrgID         uuid.NullUUID  `db:"org_id"`
	ExternalID    sql.NullString `db:"external_id"`
	Metadata      []byte         `db:"metadata"`
	CreatedAt     ts             `db:"created_at"`
	UpdatedAt     ts             `db:"updated_at"`
	// The columns of a full read only (userReadCols).
	VerifiedAt   nts            `db:"email_verified_at"`
	AppMetadata  []byte         `db:"app_metadata"`
	UserMetadata []byte         `db:"user_metadata"`
	BannedUntil  nts            `db:"banned_until"`
	BanReason    sql.NullString `db:"ban_reason"`
}

// userCols are the columns written on insert. email_verified_at is set only
// by verification, so inserts leave it NULL.
const userCols = `id, email, email_verified, password_hash, org_id, external_id, metadata, created_at, updated_at`

// userReadCols are the columns of a full read.
const userReadCols = userCols + `, email_verified_at, app_metadata, user_metadata, banned_until, ban_reason`

func (r *userRow) domain() *domain.User {
	u := &domain.User{
		ID:            r.ID,
		Email:         r.Email.String,
		EmailVerified: r.EmailVerified,
		PasswordHash:  r.PasswordHash.String,
		ExternalID:    r.ExternalID.String,
		CreatedAt:     time.Time(r.CreatedAt),
		UpdatedAt:     time.Time(r.UpdatedAt),
		VerifiedAt:    r.VerifiedAt.ptr(),
		BannedUntil:   r.BannedUntil.ptr(),
		BanReason:     r.BanReason.String,
	}
	if len(r.AppMetadata) > 0 {
		u.AppMetadata = append([]byte(nil), r.AppMetadata...)
	}
	if len(r.UserMetadata) > 0 {
		u.UserMetadata = append([]byte(nil), r.UserMetadata...)
	}
	if r.OrgID.Valid {
		id := r.OrgID.UUID
		u.OrgID = &id
	}
	if len(r.Metadata) > 0 {
		u.Metadata = append([]byte(nil), r.Metadata...)
	}
	return u
}

func nullStr(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func nullUUID(id *uuid.UUID) uuid.NullUUID {
	if id == nil {
		return uuid.NullUUID{}
	}
	return uuid.NullUUID{UUID: *id, Valid: true}
}

func nullJSON(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

func (s *Store) insertUser(ctx context.Context, tx *sqlx.Tx, u *domain.User) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO users (`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		u.ID, nullStr(u.Email), u.EmailVerified, nullStr(u.PasswordHash), nullUUID(u.OrgID), nullStr(u.ExternalID),
		nullJSON(u.Metadata), ts(u.CreatedAt), ts(u.UpdatedAt))
	return err
}

// CreateUser stores a new user with its first session and refresh token in
// one transaction. Returns CodeEmailTaken if the email is in use.
func (s *Store) CreateUser(ctx context.Context, u *domain.User, sess *domain.Session, rt *domain.RefreshToken) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if err := s.insertUser(ctx, tx, u); err != nil {
			return err
		}
		return s.insertSession(ctx, tx, sess, rt)
	})
	if domain.IsCode(err, domain.CodeConflict) {
		return &domain.Error{Code: domain.CodeEmailTaken, Message: "an account with this email already exists", Err: err}
	}
	return err
}

// UserByEmail returns the password account with the normalised email.
// Returns CodeNotFound if there is none.
func (s *Store) UserByEmail(ctx context.Context, email string) (*domain.User, error) {
	var r userRow
	if err := s.get(ctx, &r, `SELECT `+userReadCols+` FROM users WHERE email = ? AND org_id IS NULL`, email); err != nil {
		return nil, translate(err)
	}
	return r.domain(), nil
}

// UserByID returns the user. Returns CodeNotFound if there is none.
func (s *Store) UserByID(ctx context.Context, id uuid.UUID) (*domain.User, error) {
	var r userRow
	if err := s.get(ctx, &r, `SELECT `+userReadCols+` FROM users WHERE id = ?`, id); err != nil {
		return nil, translate(err)
	}
	return r.domain(), nil
}

// SetPasswordHash replaces the user's password hash if it still equals old.
// Returns CodeNotFound if the user does not exist or the hash moved on.
func (s *Store) SetPasswordHash(ctx context.Context, id uuid.UUID, old, new string, now time.Time) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? AND password_hash = ?`),
			new, ts(now), id, old)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return domain.Errorf(domain.CodeNotFound, "user not found")
		}
		return nil
	})
}

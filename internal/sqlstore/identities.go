package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/latchauth/latch/internal/domain"
)

type identityRow struct {
	ID            uuid.UUID      `db:"id"`
	UserID        uuid.UUID      `db:"user_id"`
	Provider      string         `db:"provider"`
	Subject       string         `db:"subject"`
	Email         sql.NullString `db:"email"`
	EmailVerified bool           `db:"email_verified"`
	CreatedAt     ts             `db:"created_at"`
	LastSignInAt  nts            `db:"last_sign_in_at"`
}

const identityCols = `id, user_id, provider, subject, email, email_verified, created_at, last_sign_in_at`

func (r *identityRow) domain() domain.Identity {
	return domain.Identity{ID: r.ID, UserID: r.UserID, Provider: r.Provider, Subject: r.Subject, Email: r.Email.String,
		EmailVerified: r.EmailVerified, CreatedAt: time.Time(r.CreatedAt), LastSignInAt: r.LastSignInAt.ptr()}
}

func (s *Store) insertIdentity(ctx context.Context, tx *sqlx.Tx, i *domain.Identity) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO identities (`+identityCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		i.ID, i.UserID, i.Provider, i.Subject, nullStr(i.Email), i.EmailVerified, ts(i.CreatedAt), ntsOf(i.LastSignInAt))
	return err
}

// SignInIdentity returns the user a provider's identity signs in, in one
// transaction: the user the identity is linked to (its email and last
// sign-in updated); else, when the password account with the identity's
// email passes domain.LinkDecision, that account, with the identity linked
// to it; else req.NewUser, created with the identity. Returns
// CodeIdentityNotLinked when an account has the email but LinkDecision
// refuses, CodeConflict when a concurrent sign-in linked the same identity
// first (a retry finds it). With req.Membership, the user joins that
// organization in the same transaction unless already a member.
func (s *Store) SignInIdentity(ctx context.Context, req domain.IdentitySignIn) (*domain.User, *domain.Identity, error) {
	var u *domain.User
	ident := req.Identity
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if err := s.signInIdentity(ctx, tx, req, &u, &ident); err != nil {
			return err
		}
		if m := req.Membership; m != nil {
			m.UserID = u.ID
			return s.addMember(ctx, tx, m)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return u, &ident, nil
}

func (s *Store) signInIdentity(ctx context.Context, tx *sqlx.Tx, req domain.IdentitySignIn, user **domain.User, identity *domain.Identity) error {
	var u *domain.User
	ident := *identity
	err := func() error {
		var r identityRow
		err := tx.GetContext(ctx, &r, s.q(`SELECT `+identityCols+` FROM identities WHERE provider = ? AND subject = ?`), ident.Provider, ident.Subject)
		switch {
		case err == nil:
			now := req.Now
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE identities SET email = ?, email_verified = ?, last_sign_in_at = ? WHERE id = ?`),
				nullStr(ident.Email), ident.EmailVerified, ts(now), r.ID); err != nil {
				return err
			}
			found := r.domain()
			found.Email, found.EmailVerified, found.LastSignInAt = ident.Email, ident.EmailVerified, &now
			ident = found
			var ur userRow
			if err := tx.GetContext(ctx, &ur, s.q(`SELECT `+userReadCols+` FROM users WHERE id = ?`), r.UserID); err != nil {
				return err
			}
			u = ur.domain()
			return nil
		case err != sql.ErrNoRows:
			return err
		}
		if ident.Email != "" {
			var ur userRow
			err := tx.GetContext(ctx, &ur, s.q(`SELECT `+userReadCols+` FROM users WHERE email = ? AND org_id IS NULL`), ident.Email)
			switch {
			case err == nil:
				existing := ur.domain()
				if err := domain.LinkDecision(existing, ident.EmailVerified); err != nil {
					return err
				}
				ident.UserID = existing.ID
				u = existing
				return s.insertIdentity(ctx, tx, &ident)
			case err != sql.ErrNoRows:
				return err
			}
		}
		if req.NewUser == nil {
			return domain.Errorf(domain.CodeNotFound, "no account")
		}
		if err := s.insertUser(ctx, tx, req.NewUser); err != nil {
			return err
		}
		u = req.NewUser
		ident.UserID = u.ID
		if err := s.insertIdentity(ctx, tx, &ident); err != nil {
			return err
		}
		return s.emit(ctx, tx, userCreated(u, "provider"))
	}()
	*user, *identity = u, ident
	return err
}

// LinkIdentity links a provider's identity to the user, or, when the user
// already holds it, records the sign-in. Returns CodeConflict when another
// user holds it, CodeNotFound when the user is gone.
func (s *Store) LinkIdentity(ctx context.Context, ident *domain.Identity) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		var r identityRow
		err := tx.GetContext(ctx, &r, s.q(`SELECT `+identityCols+` FROM identities WHERE provider = ? AND subject = ?`), ident.Provider, ident.Subject)
		switch {
		case err == nil && r.UserID != ident.UserID:
			return domain.Errorf(domain.CodeConflict, "another account holds this identity")
		case err == nil:
			_, err := tx.ExecContext(ctx, s.q(`UPDATE identities SET email = ?, email_verified = ?, last_sign_in_at = ? WHERE id = ?`),
				nullStr(ident.Email), ident.EmailVerified, ntsOf(ident.LastSignInAt), r.ID)
			ident.ID, ident.CreatedAt = r.ID, time.Time(r.CreatedAt)
			return err
		case err != sql.ErrNoRows:
			return err
		}
		var n int
		if err := tx.GetContext(ctx, &n, s.q(`SELECT COUNT(*) FROM users WHERE id = ?`), ident.UserID); err != nil {
			return err
		}
		if n == 0 {
			return domain.Errorf(domain.CodeNotFound, "user not found")
		}
		return s.insertIdentity(ctx, tx, ident)
	})
}

// ListIdentities returns the user's provider identities, oldest first.
func (s *Store) ListIdentities(ctx context.Context, userID uuid.UUID) ([]domain.Identity, error) {
	var rows []identityRow
	if err := s.db.SelectContext(ctx, &rows, s.q(`SELECT `+identityCols+` FROM identities WHERE user_id = ? ORDER BY created_at, id`), userID); err != nil {
		return nil, translate(err)
	}
	out := make([]domain.Identity, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
	}
	return out, nil
}

// DeleteIdentity unlinks one of the user's provider identities, in one
// transaction with the check that the user keeps another way to sign in: a
// password, another identity, or a passkey that signs in alone. Returns
// CodeNotFound when the user holds no such identity, CodeLastIdentity when
// it is the last way.
func (s *Store) DeleteIdentity(ctx context.Context, userID, id uuid.UUID) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if s.dialect == Postgres {
			// Two concurrent unlinks of a user's last two identities must
			// not both pass the count.
			if _, err := tx.ExecContext(ctx, `SELECT id FROM users WHERE id = $1 FOR UPDATE`, userID); err != nil {
				return err
			}
		}
		var others struct {
			Identities int  `db:"identities"`
			Password   bool `db:"password"`
			Passkeys   int  `db:"passkeys"`
		}
		err := tx.GetContext(ctx, &others, s.q(`SELECT
			(SELECT COUNT(*) FROM identities WHERE user_id = ? AND id <> ?) AS identities,
			(SELECT COALESCE(password_hash, '') <> '' FROM users WHERE id = ?) AS password,
			(SELECT COUNT(*) FROM mfa_webauthn_credentials c JOIN mfa_factors f ON f.id = c.factor_id
				WHERE f.user_id = ? AND f.verified_at IS NOT NULL AND c.passwordless) AS passkeys`),
			userID, id, userID, userID)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM identities WHERE id = ? AND user_id = ?`), id, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return domain.Errorf(domain.CodeNotFound, "identity not found")
		}
		if others.Identities == 0 && !others.Password && others.Passkeys == 0 {
			return domain.Errorf(domain.CodeLastIdentity, "this is the account's last way to sign in; set a password or link another provider first")
		}
		return nil
	})
}

type providerFlowRow struct {
	StateHash     []byte        `db:"state_hash"`
	BrowserHash   []byte        `db:"browser_hash"`
	Provider      string        `db:"provider"`
	Nonce         string        `db:"nonce"`
	Verifier      []byte        `db:"verifier"`
	RedirectTo    string        `db:"redirect_to"`
	CodeChallenge string        `db:"code_challenge"`
	LinkUserID    uuid.NullUUID `db:"link_user_id"`
	CreatedAt     ts            `db:"created_at"`
	ExpiresAt     ts            `db:"expires_at"`
}

const providerFlowCols = `state_hash, browser_hash, provider, nonce, verifier, redirect_to, code_challenge, link_user_id, created_at, expires_at`

// CreateProviderFlow stores a provider sign-in under way.
func (s *Store) CreateProviderFlow(ctx context.Context, f *domain.ProviderFlow) error {
	_, err := s.exec(ctx, `INSERT INTO provider_flows (`+providerFlowCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		f.StateHash, f.BrowserHash, f.Provider, f.Nonce, f.Verifier, f.RedirectTo, f.CodeChallenge, nullUUID(f.LinkUserID),
		ts(f.CreatedAt), ts(f.ExpiresAt))
	return translate(err)
}

// TakeProviderFlow deletes the flow whose state hashes to stateHash and
// returns it when it had not expired at now: a state is good for one
// answer. Returns CodeNotFound otherwise.
func (s *Store) TakeProviderFlow(ctx context.Context, stateHash []byte, now time.Time) (*domain.ProviderFlow, error) {
	var r providerFlowRow
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &r, s.q(`DELETE FROM provider_flows WHERE state_hash = ? RETURNING `+providerFlowCols), stateHash)
	})
	if err != nil {
		return nil, err
	}
	if !now.Before(time.Time(r.ExpiresAt)) {
		return nil, domain.Errorf(domain.CodeNotFound, "the sign-in expired")
	}
	f := &domain.ProviderFlow{StateHash: r.StateHash, BrowserHash: r.BrowserHash, Provider: r.Provider, Nonce: r.Nonce,
		Verifier: r.Verifier, RedirectTo: r.RedirectTo, CodeChallenge: r.CodeChallenge,
		CreatedAt: time.Time(r.CreatedAt), ExpiresAt: time.Time(r.ExpiresAt)}
	if r.LinkUserID.Valid {
		id := r.LinkUserID.UUID
		f.LinkUserID = &id
	}
	return f, nil
}

type providerCodeRow struct {
	CodeHash      []byte         `db:"code_hash"`
	UserID        uuid.UUID      `db:"user_id"`
	Provider      string         `db:"provider"`
	CodeChallenge string         `db:"code_challenge"`
	RedirectTo    string         `db:"redirect_to"`
	AAL           string         `db:"aal"`
	AMR           string         `db:"amr"`
	LinkSubject   sql.NullString `db:"link_subject"`
	LinkEmail     sql.NullString `db:"link_email"`
	LinkVerified  bool           `db:"link_email_verified"`
	CreatedAt     ts             `db:"created_at"`
	ExpiresAt     ts             `db:"expires_at"`
}

const providerCodeCols = `code_hash, user_id, provider, code_challenge, redirect_to, aal, amr, link_subject, link_email, link_email_verified, created_at, expires_at`

// CreateProviderCode stores a one-time code (its hash).
func (s *Store) CreateProviderCode(ctx context.Context, c *domain.ProviderCode) error {
	var subject, email sql.NullString
	verified := false
	if c.Link != nil {
		subject, email, verified = sql.NullString{String: c.Link.Subject, Valid: true}, nullStr(c.Link.Email), c.Link.EmailVerified
	}
	_, err := s.exec(ctx, `INSERT INTO provider_codes (`+providerCodeCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.CodeHash, c.UserID, c.Provider, c.CodeChallenge, c.RedirectTo, aalOf(c.AAL), joinAMR(c.AMR), subject, email, verified,
		ts(c.CreatedAt), ts(c.ExpiresAt))
	return translate(err)
}

// TakeProviderCode deletes the code that hashes to codeHash and returns it
// when it had not expired at now: a code is exchanged once, whatever the
// outcome of the exchange. Returns CodeNotFound otherwise.
func (s *Store) TakeProviderCode(ctx context.Context, codeHash []byte, now time.Time) (*domain.ProviderCode, error) {
	var r providerCodeRow
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &r, s.q(`DELETE FROM provider_codes WHERE code_hash = ? RETURNING `+providerCodeCols), codeHash)
	})
	if err != nil {
		return nil, err
	}
	if !now.Before(time.Time(r.ExpiresAt)) {
		return nil, domain.Errorf(domain.CodeNotFound, "the code expired")
	}
	c := &domain.ProviderCode{CodeHash: r.CodeHash, UserID: r.UserID, Provider: r.Provider, CodeChallenge: r.CodeChallenge,
		RedirectTo: r.RedirectTo, AAL: r.AAL, AMR: splitAMR(r.AMR), CreatedAt: time.Time(r.CreatedAt), ExpiresAt: time.Time(r.ExpiresAt)}
	if r.LinkSubject.Valid {
		c.Link = &domain.Identity{UserID: r.UserID, Provider: r.Provider, Subject: r.LinkSubject.String, Email: r.LinkEmail.String,
			EmailVerified: r.LinkVerified}
	}
	return c, nil
}

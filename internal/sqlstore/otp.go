package sqlstore

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/latchauth/latch/internal/domain"
)

type otpRow struct {
	ID         uuid.UUID `db:"id"`
	Email      string    `db:"email"`
	TokenHash  []byte    `db:"token_hash"`
	CodeHash   []byte    `db:"code_hash"`
	CreateUser bool      `db:"create_user"`
	Attempts   int       `db:"attempts"`
	CreatedAt  ts        `db:"created_at"`
	ExpiresAt  ts        `db:"expires_at"`
}

const otpCols = `id, email, token_hash, code_hash, create_user, attempts, created_at, expires_at`

func (r *otpRow) domain() *domain.OTPChallenge {
	return &domain.OTPChallenge{ID: r.ID, Email: r.Email, TokenHash: r.TokenHash, CodeHash: r.CodeHash, CreateUser: r.CreateUser,
		Attempts: r.Attempts, CreatedAt: time.Time(r.CreatedAt), ExpiresAt: time.Time(r.ExpiresAt)}
}

func invalidOTP() error {
	return domain.Errorf(domain.CodeInvalidToken, "the code or link is invalid, expired or already used")
}

// CreateOTPChallenge stores the challenge in place of its email's pending
// one (whose link and code stop working) and queues the mail that carries
// it, in one transaction. Concurrent requests for one address leave one
// challenge: the last to commit.
func (s *Store) CreateOTPChallenge(ctx context.Context, c *domain.OTPChallenge, m *domain.OutboxMessage) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO otp_challenges (`+otpCols+`) VALUES (?, ?, ?, ?, ?, 0, ?, ?)
			ON CONFLICT (email) DO UPDATE SET id = excluded.id, token_hash = excluded.token_hash, code_hash = excluded.code_hash,
				create_user = excluded.create_user, attempts = 0, created_at = excluded.created_at, expires_at = excluded.expires_at`),
			c.ID, c.Email, c.TokenHash, c.CodeHash, c.CreateUser, ts(c.CreatedAt), ts(c.ExpiresAt)); err != nil {
			return err
		}
		return s.insertOutbox(ctx, tx, m)
	})
}

// RedeemOTP spends the live challenge that r presents and returns the
// account it signs in, in one transaction. A link (r.TokenHash) is spent by
// a conditional delete that has one winner among concurrent uses. A code
// first takes one attempt of the email's challenge with a conditional
// update (so concurrent wrong codes never take more than
// domain.OTPMaxAttempts), then r.Check decides; a wrong code commits the
// attempt and returns CodeInvalidToken. The challenge's email becomes
// verified; when no account has it and the challenge asked for one,
// r.NewUser is created. Returns CodeInvalidToken for an unknown, expired,
// spent or ended challenge, a wrong code, or an address without an
// account whose challenge did not ask for one.
func (s *Store) RedeemOTP(ctx context.Context, r domain.OTPRedeem) (*domain.OTPResult, error) {
	var res *domain.OTPResult
	wrong := false
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		var row otpRow
		var err error
		if r.TokenHash != nil {
			err = tx.GetContext(ctx, &row, s.q(`DELETE FROM otp_challenges WHERE token_hash = ? AND attempts < ? AND expires_at > ?
				RETURNING `+otpCols), r.TokenHash, domain.OTPMaxAttempts, ts(r.Now))
		} else {
			err = tx.GetContext(ctx, &row, s.q(`UPDATE otp_challenges SET attempts = attempts + 1
				WHERE email = ? AND attempts < ? AND expires_at > ? RETURNING `+otpCols), r.Email, domain.OTPMaxAttempts, ts(r.Now))
		}
		if err != nil {
			if domain.IsCode(translate(err), domain.CodeNotFound) {
				return invalidOTP()
			}
			return err
		}
		c := row.domain()
		if r.TokenHash == nil {
			if r.Check == nil || !r.Check(c) {
				wrong = true
				return nil // the attempt commits
			}
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM otp_challenges WHERE id = ?`), c.ID); err != nil {
				return err
			}
		}
		res, err = s.otpUserTx(ctx, tx, c, r.NewUser, r.Now)
		return err
	})
	if err != nil {
		return nil, err
	}
	if wrong {
		return nil, invalidOTP()
	}
	return res, nil
}

// otpUserTx returns the account of the spent challenge c, created from
// newUser when there is none and c asks for one, with its email verified.
func (s *Store) otpUserTx(ctx context.Context, tx *sqlx.Tx, c *domain.OTPChallenge, newUser *domain.User, now time.Time) (*domain.OTPResult, error) {
	res := &domain.OTPResult{}
	var u userRow
	err := tx.GetContext(ctx, &u, s.q(`SELECT `+userReadCols+` FROM users WHERE email = ? AND org_id IS NULL`), c.Email)
	switch {
	case err == nil:
	case domain.IsCode(translate(err), domain.CodeNotFound):
		if !c.CreateUser || newUser == nil {
			return nil, invalidOTP()
		}
		nu := *newUser
		nu.Email = c.Email
		if err := s.insertUser(ctx, tx, &nu); err != nil {
			if domain.IsCode(translate(err), domain.CodeConflict) {
				// An account with the address was created meanwhile: the
				// transaction rolls back, the challenge stays, and trying
				// again signs that account in.
				return nil, &domain.Error{Code: domain.CodeUnavailable, Message: "the account changed meanwhile; try again",
					RetryAfter: time.Second, Err: err}
			}
			return nil, err
		}
		res.Created = true
		if err := tx.GetContext(ctx, &u, s.q(`SELECT `+userReadCols+` FROM users WHERE id = ?`), nu.ID); err != nil {
			return nil, err
		}
		if err := s.emit(ctx, tx, userCreated(u.domain(), "otp")); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	if !u.EmailVerified || !u.VerifiedAt.Valid {
		res.Verified = !u.EmailVerified
		// The code or link proves control of the address.
		if _, err := s.changeCredentialsTx(ctx, tx, u.ID, domain.CredentialChange{VerifyEmail: c.Email, IfEmail: c.Email}, now); err != nil {
			return nil, err
		}
		if err := tx.GetContext(ctx, &u, s.q(`SELECT `+userReadCols+` FROM users WHERE id = ?`), u.ID); err != nil {
			return nil, err
		}
	}
	res.User = *u.domain()
	return res, nil
}

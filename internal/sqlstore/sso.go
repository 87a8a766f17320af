package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/latchauth/latch/internal/domain"
)

type orgDomainRow struct {
	ID         uuid.UUID `db:"id"`
	OrgID      uuid.UUID `db:"org_id"`
	Domain     string    `db:"domain"`
	Token      string    `db:"token"`
	VerifiedAt nts       `db:"verified_at"`
	CreatedAt  ts        `db:"created_at"`
}

const orgDomainCols = `id, org_id, domain, token, verified_at, created_at`

func (r *orgDomainRow) domain() domain.OrgDomain {
	return domain.OrgDomain{ID: r.ID, OrgID: r.OrgID, Domain: r.Domain, Token: r.Token, VerifiedAt: r.VerifiedAt.ptr(),
		CreatedAt: time.Time(r.CreatedAt)}
}

func errDomainNotFound() error { return domain.Errorf(domain.CodeNotFound, "domain not found") }

// CreateOrgDomain stores a domain the organization claims, not verified.
// Returns CodeConflict when the organization already has it.
func (s *Store) CreateOrgDomain(ctx context.Context, d *domain.OrgDomain) error {
	_, err := s.exec(ctx, `INSERT INTO org_domains (`+orgDomainCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
		d.ID, d.OrgID, d.Domain, d.Token, ntsOf(d.VerifiedAt), ts(d.CreatedAt))
	if err = translate(err); domain.IsCode(err, domain.CodeConflict) {
		return domain.Errorf(domain.CodeConflict, "the organization already has the domain %s", d.Domain)
	}
	return err
}

// ListOrgDomains returns the organization's domains, oldest first.
func (s *Store) ListOrgDomains(ctx context.Context, orgID uuid.UUID) ([]domain.OrgDomain, error) {
	var rows []orgDomainRow
	if err := s.db.SelectContext(ctx, &rows, s.q(`SELECT `+orgDomainCols+` FROM org_domains WHERE org_id = ? ORDER BY created_at, id`), orgID); err != nil {
		return nil, translate(err)
	}
	out := make([]domain.OrgDomain, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
	}
	return out, nil
}

// OrgDomain returns one of the organization's domains. Returns
// CodeNotFound.
func (s *Store) OrgDomain(ctx context.Context, orgID, id uuid.UUID) (*domain.OrgDomain, error) {
	var r orgDomainRow
	if err := s.db.GetContext(ctx, &r, s.q(`SELECT `+orgDomainCols+` FROM org_domains WHERE org_id = ? AND id = ?`), orgID, id); err != nil {
		if err = translate(err); domain.IsCode(err, domain.CodeNotFound) {
			return nil, errDomainNotFound()
		}
		return nil, err
	}
	d := r.domain()
	return &d, nil
}

// VerifyOrgDomain marks the organization's domain verified at now (a
// verified domain keeps its first verification). Returns CodeNotFound,
// CodeConflict when another organization verified the domain (the unique
// index on verified domains decides, also between concurrent requests).
func (s *Store) VerifyOrgDomain(ctx context.Context, orgID, id uuid.UUID, now time.Time) (*domain.OrgDomain, error) {
	var r orgDomainRow
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &r, s.q(`UPDATE org_domains SET verified_at = COALESCE(verified_at, ?) WHERE org_id = ? AND id = ?
			RETURNING `+orgDomainCols), ts(now), orgID, id)
	})
	switch {
	case domain.IsCode(err, domain.CodeNotFound):
		return nil, errDomainNotFound()
	case domain.IsCode(err, domain.CodeConflict):
		return nil, domain.Errorf(domain.CodeConflict, "another organization verified this domain")
	case err != nil:
		return nil, err
	}
	d := r.domain()
	return &d, nil
}

// DeleteOrgDomain removes one of the organization's domains. Returns
// CodeNotFound.
func (s *Store) DeleteOrgDomain(ctx context.Context, orgID, id uuid.UUID) error {
	res, err := s.exec(ctx, `DELETE FROM org_domains WHERE org_id = ? AND id = ?`, orgID, id)
	if err != nil {
		return translate(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return errDomainNotFound()
	}
	return nil
}

type ssoRow struct {
	OrgID        uuid.UUID `db:"org_id"`
	Issuer       string    `db:"issuer"`
	ClientID     string    `db:"client_id"`
	ClientSecret []byte    `db:"client_secret"`
	Scopes       string    `db:"scopes"`
	DefaultRole  string    `db:"default_role"`
	RequireSSO   bool      `db:"require_sso"`
	CreatedAt    ts        `db:"created_at"`
	UpdatedAt    ts        `db:"updated_at"`
}

const ssoCols = `org_id, issuer, client_id, client_secret, scopes, default_role, require_sso, created_at, updated_at`

func (r *ssoRow) domain() *domain.SSOConnection {
	var scopes []string
	if r.Scopes != "" {
		scopes = strings.Split(r.Scopes, " ")
	}
	return &domain.SSOConnection{OrgID: r.OrgID, Issuer: r.Issuer, ClientID: r.ClientID, ClientSecret: r.ClientSecret, Scopes: scopes,
		DefaultRole: domain.Role(r.DefaultRole), RequireSSO: r.RequireSSO, CreatedAt: time.Time(r.CreatedAt), UpdatedAt: time.Time(r.UpdatedAt)}
}

func errSSONotFound() error {
	return domain.Errorf(domain.CodeNotFound, "the organization has no SSO connection")
}

// PutSSOConnection creates or replaces the organization's connection. A
// nil ClientSecret keeps the stored one; CreatedAt is kept on a
// replacement. Returns the stored connection, CodeInvalidRequest when
// there is no secret to keep.
func (s *Store) PutSSOConnection(ctx context.Context, c *domain.SSOConnection) (*domain.SSOConnection, error) {
	var out *domain.SSOConnection
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		lock := s.rowLock(" FOR UPDATE")
		var old ssoRow
		err := tx.GetContext(ctx, &old, s.q(`SELECT `+ssoCols+` FROM org_sso_connections WHERE org_id = ?`+lock), c.OrgID)
		if err != nil && !domain.IsCode(translate(err), domain.CodeNotFound) {
			return err
		}
		found := err == nil
		n := *c
		if n.ClientSecret == nil {
			if !found {
				return domain.Errorf(domain.CodeInvalidRequest, "client_secret is required when the connection is created")
			}
			n.ClientSecret = old.ClientSecret
		}
		if found {
			n.CreatedAt = time.Time(old.CreatedAt)
		}
		args := []any{n.OrgID, n.Issuer, n.ClientID, n.ClientSecret, strings.Join(n.Scopes, " "), string(n.DefaultRole), n.RequireSSO,
			ts(n.CreatedAt), ts(n.UpdatedAt)}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO org_sso_connections (`+ssoCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (org_id) DO UPDATE SET issuer = excluded.issuer, client_id = excluded.client_id,
			client_secret = excluded.client_secret, scopes = excluded.scopes, default_role = excluded.default_role,
			require_sso = excluded.require_sso, updated_at = excluded.updated_at`), args...); err != nil {
			return err
		}
		out = &n
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SSOConnection returns the organization's connection. Returns
// CodeNotFound.
func (s *Store) SSOConnection(ctx context.Context, orgID uuid.UUID) (*domain.SSOConnection, error) {
	var r ssoRow
	if err := s.db.GetContext(ctx, &r, s.q(`SELECT `+ssoCols+` FROM org_sso_connections WHERE org_id = ?`), orgID); err != nil {
		if err = translate(err); domain.IsCode(err, domain.CodeNotFound) {
			return nil, errSSONotFound()
		}
		return nil, err
	}
	return r.domain(), nil
}

// DeleteSSOConnection removes the organization's connection. Returns
// CodeNotFound.
func (s *Store) DeleteSSOConnection(ctx context.Context, orgID uuid.UUID) error {
	res, err := s.exec(ctx, `DELETE FROM org_sso_connections WHERE org_id = ?`, orgID)
	if err != nil {
		return translate(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return errSSONotFound()
	}
	return nil
}

// SSOConnectionForDomain returns the connection of the organization that
// verified the email domain, in one query on the unique index of verified
// domains. Returns CodeNotFound when no organization verified it or the one
// that did has no connection.
func (s *Store) SSOConnectionForDomain(ctx context.Context, emailDomain string) (*domain.SSOConnection, error) {
	var r ssoRow
	err := s.db.GetContext(ctx, &r, s.q(`SELECT c.org_id, c.issuer, c.client_id, c.client_secret, c.scopes, c.default_role, c.require_sso,
		c.created_at, c.updated_at FROM org_domains d JOIN org_sso_connections c ON c.org_id = d.org_id
		WHERE d.domain = ? AND d.verified_at IS NOT NULL`), emailDomain)
	if err != nil {
		if err = translate(err); domain.IsCode(err, domain.CodeNotFound) {
			return nil, errSSONotFound()
		}
		return nil, err
	}
	return r.domain(), nil
}

// addMember makes the user a member of m.OrgID with m.Role unless they
// already are one, with the organization.member.added event when added.
func (s *Store) addMember(ctx context.Context, tx *sqlx.Tx, m *domain.Member) error {
	res, err := tx.ExecContext(ctx, s.q(`INSERT INTO org_members (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (org_id, user_id) DO NOTHING`), m.OrgID, m.UserID, string(m.Role), ts(m.CreatedAt))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return s.emit(ctx, tx, memberAdded(m, nil))
	}
	return nil
}

package service

import (
	"context"
	"net/url"

	"github.com/latchauth/latch/internal/domain"
)

// ssoLookup is what SSORequirement needs of the store.
type ssoLookup interface {
	// SSOConnectionForDomain returns the connection of the organization
	// that verified the domain. Returns CodeNotFound.
	SSOConnectionForDomain(ctx context.Context, emailDomain string) (*domain.SSOConnection, error)
}

// SSORequirement is the one place of require_sso: an address of a domain
// whose organization requires SSO signs in only through that
// organization's connection. Password login, signup, email codes, password
// recovery and configured providers ask it.
type SSORequirement struct {
	store ssoLookup
}

// Check returns CodeSSORequired when the organization that verified the
// domain of the normalised email requires SSO, nil otherwise (also for an
// address without a domain). It costs one indexed query.
func (r *SSORequirement) Check(ctx context.Context, email string) error {
	d := emailDomain(email)
	if r == nil || d == "" {
		return nil
	}
	c, err := r.store.SSOConnectionForDomain(ctx, d)
	if domain.IsCode(err, domain.CodeNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !c.RequireSSO {
		return nil
	}
	return domain.Errorf(domain.CodeSSORequired, "the organization of %s requires single sign-on: sign in through GET /auth/sso?email=%s", d, url.QueryEscape(email))
}

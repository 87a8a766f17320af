package token

import (
	"errors"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch/internal/domain"
)

// VerifyAnyAudience is Verify without the audience check, for token
// introspection: a token exchanged for a registered audience is refused by
// Verify (Latch's own endpoints accept only LATCH_AUDIENCE) but is still a
// valid Latch token that its resource server may introspect. Every other
// check of Verify applies: size, alg allowlist, typ, kid, signature, iss,
// exp (required), nbf, iat, sub and jti. The verify cache is not used.
// Returns CodeTokenExpired or CodeInvalidToken.
func (is *Issuer) VerifyAnyAudience(tok string) (*Claims, error) {
	if len(tok) > MaxTokenBytes || strings.Count(tok, ".") != 2 {
		return nil, domain.Errorf(domain.CodeInvalidToken, "the access token is malformed")
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{is.cfg.Alg}),
		jwt.WithIssuer(is.cfg.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(is.cfg.Leeway),
		jwt.WithTimeFunc(is.cfg.Clock.Now),
	)
	c := &Claims{}
	if _, err := p.ParseWithClaims(tok, c, is.keyFor); err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) && c.ExpiresAt != nil {
			return nil, &domain.Error{Code: domain.CodeTokenExpired, Message: "the access token has expired", ExpiresAt: c.ExpiresAt.Time.UTC()}
		}
		return nil, &domain.Error{Code: domain.CodeInvalidToken, Message: "the access token is invalid", Err: err}
	}
	if c.Subject == "" || c.ID == "" {
		return nil, domain.Errorf(domain.CodeInvalidToken, "the access token is missing claims")
	}
	return c, nil
}

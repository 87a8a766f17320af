package client

import (
	"context"

	"golang.org/x/oauth2"
)

// TokenSource returns an oauth2.TokenSource over the Client's access
// tokens, for libraries that take one. Each Token call returns the current
// access token, renewed by the Client when due (the refresh token stays
// inside the Client, so nothing else can spend it). Expiry is on the
// Client's clock.
func (c *Client) TokenSource() oauth2.TokenSource { return tokenSource{c} }

type tokenSource struct{ c *Client }

var _ oauth2.TokenSource = tokenSource{}

func (s tokenSource) Token() (*oauth2.Token, error) {
	t, err := s.c.Token(context.Background())
	if err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: t.AccessToken, TokenType: "Bearer", Expiry: t.ExpiresAt}, nil
}

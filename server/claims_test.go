package server_test

import (
	"context"
	"testing"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/testutil"
)

// Every claim Latch puts in an access token (a user's session token at
// aal1 and aal2, an exchanged token of a personal and of an organization
// key, a delegated session's token) is a property of the AccessTokenClaims
// schema, which the one claims type (package claims, used by the server
// and client/verify) is held equal to.
func TestAccessTokenClaimsAreInTheSpec(t *testing.T) {
	doc, _, err := testutil.Spec()
	if err != nil {
		t.Fatal(err)
	}
	schema := doc.Components.Schemas["AccessTokenClaims"]
	if schema == nil || schema.Value == nil {
		t.Fatal("openapi.yaml has no AccessTokenClaims schema")
	}
	s := testutil.Start(t, "sqlite")
	ctx := context.Background()
	first := signup(t, s, "cleo@example.com")
	k, _ := s.Client.CreateAPIKeyWithResponse(ctx, client.CreateAPIKeyJSONRequestBody{Label: "claims", Scopes: []client.Scope{"token:exchange", "billing:read"}},
		testutil.Bearer(first.AccessToken))
	org, _ := s.Client.CreateOrganizationWithResponse(ctx, client.CreateOrganizationJSONRequestBody{Name: "Claims"}, testutil.Bearer(first.AccessToken))
	ok, _ := s.Client.CreateOrgAPIKeyWithResponse(ctx, org.JSON201.Id, client.CreateAPIKeyJSONRequestBody{Label: "org",
		Scopes: []client.Scope{"token:exchange", "sessions:write"}}, testutil.Bearer(first.AccessToken))
	personal := exchange(t, s, client.ExchangeTokenJSONRequestBody{}, testutil.APIKey(k.JSON201.Key))
	orgTok := exchange(t, s, client.ExchangeTokenJSONRequestBody{}, testutil.APIKey(ok.JSON201.Key))
	ext := "ext-1"
	del, _ := s.Client.CreateDelegatedSessionWithResponse(ctx, client.CreateDelegatedSessionJSONRequestBody{ExternalId: ext}, testutil.APIKey(ok.JSON201.Key))
	if del.JSON201 == nil {
		t.Fatalf("delegated session: %d %s", del.StatusCode(), del.Body)
	}
	_, en := enrollTOTP(t, s, first.AccessToken)
	tokens := map[string]string{
		"session aal1":       first.AccessToken,
		"session aal2":       en.Tokens.AccessToken,
		"personal exchanged": personal.JSON200.AccessToken,
		"org exchanged":      orgTok.JSON200.AccessToken,
		"delegated session":  del.JSON201.AccessToken,
	}
	seen := map[string]bool{}
	for name, tok := range tokens {
		for claim := range tokenClaims(t, tok) {
			seen[claim] = true
			if _, ok := schema.Value.Properties[claim]; !ok {
				t.Errorf("%s: the claim %q is not in AccessTokenClaims", name, claim)
			}
		}
	}
	for _, c := range []string{"aal", "amr", "sid", "scope", "key_id", "org_id", "ext", "client_id", "auth_time"} {
		if !seen[c] {
			t.Errorf("no token carried %q: the check above proves nothing for it", c)
		}
	}
}

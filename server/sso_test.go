package server_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/ratelimit"
	"github.com/latchauth/latch/internal/service"
	"github.com/latchauth/latch/internal/testutil"
)

// ssoURL is Latch's /auth/sso URL for the email.
func ssoURL(s *testutil.Server, email string) string {
	q := url.Values{"email": {email}, "redirect_to": {appRedirect}, "code_challenge": {challenge(appVerifier)}, "code_challenge_method": {"S256"}}
	return s.URL + "/auth/sso?" + q.Encode()
}

// ssoSignIn runs a whole SSO sign-in for email, signing in at the
// organization's provider as login, and returns the application's query.
func ssoSignIn(t *testing.T, s *testutil.Server, email, login string) url.Values {
	t.Helper()
	b := newBrowser(t)
	return b.callback(b.toProvider(ssoURL(s, email), login))
}

func addDomain(t *testing.T, s *testutil.Server, tok string, org uuid.UUID, name string) *client.OrgDomain {
	t.Helper()
	res, err := s.Client.CreateOrgDomainWithResponse(context.Background(), org, client.CreateOrgDomainJSONRequestBody{Domain: name}, testutil.Bearer(tok))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "add domain", res.StatusCode(), res.Body, http.StatusCreated)
	return res.JSON201
}

// verifiedDomain adds the domain to the organization, publishes its TXT
// record on dnsSrv and verifies it.
func verifiedDomain(t *testing.T, s *testutil.Server, dnsSrv *testutil.DNS, tok string, org uuid.UUID, name string) *client.OrgDomain {
	t.Helper()
	dom := addDomain(t, s, tok, org, name)
	dnsSrv.Set(dom.Verification.RecordName, dom.Verification.RecordValue)
	check(t, "verify", verifyDomain(t, s, tok, org, dom.Id).StatusCode(), nil, 200)
	return dom
}

func verifyDomain(t *testing.T, s *testutil.Server, tok string, org, id uuid.UUID) *client.VerifyOrgDomainResponse {
	t.Helper()
	res, err := s.Client.VerifyOrgDomainWithResponse(context.Background(), org, id, testutil.Bearer(tok))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func putSSO(t *testing.T, s *testutil.Server, tok string, org uuid.UUID, body client.PutOrgSSOJSONRequestBody) *client.PutOrgSSOResponse {
	t.Helper()
	res, err := s.Client.PutOrgSSOWithResponse(context.Background(), org, body, testutil.Bearer(tok))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// ssoAllowPrivate lets the organizations' connections reach the
// oidc-provider on loopback (LATCH_SSO_ALLOW_PRIVATE).
func ssoAllowPrivate(c *app.Config) { c.SSOAllowPrivate = true }

// ssoServer starts the oidc-provider, a DNS server and Latch (with "op",
// the same provider as a configured one), and returns a function that
// registers Latch's callbacks for the organizations with the provider.
func ssoServer(t *testing.T, d string, opts ...testutil.Option) (*testutil.Server, *testutil.DNS, string, func(orgs ...uuid.UUID)) {
	t.Helper()
	issuer, register := startOIDCProvider(t)
	dnsSrv := testutil.StartDNS(t)
	s := testutil.Start(t, d, append([]testutil.Option{
		withProviders(service.ProviderConfig{ID: "op", Kind: service.ProviderOIDC, Issuer: issuer, ClientID: opClientID, ClientSecret: opClientSecret}),
		dnsSrv.Option, otpConfig, ssoAllowPrivate}, opts...)...)
	return s, dnsSrv, issuer, func(orgs ...uuid.UUID) {
		uris := []string{s.URL + "/auth/providers/op/callback"}
		for _, o := range orgs {
			uris = append(uris, s.URL+"/auth/providers/org-"+o.String()+"/callback")
		}
		register(uris...)
	}
}

// The whole flow against the real oidc-provider and a real DNS server: the
// owner adds a domain, verifies it by its TXT record, registers the
// organization's provider; a new user of the domain signs in through
// /auth/sso, joins the organization with the default role, and the tokens
// work. The secret is never returned; roles are held to the rule.
func TestSSOSignIn(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s, dnsSrv, issuer, register := ssoServer(t, d)
		ctx := context.Background()
		alice := signup(t, s, "alice@example.com")
		bob := signup(t, s, "bob@example.com")
		carol := signup(t, s, "carol@example.com")
		org := createOrg(t, s, alice.AccessToken, "Acme")
		addMember(t, s, alice.AccessToken, org.Id, "bob@example.com", client.RoleMember)
		addMember(t, s, alice.AccessToken, org.Id, "carol@example.com", client.RoleAdmin)
		register(org.Id)

		// The domain is normalised; public suffixes and one label are refused.
		dom := addDomain(t, s, alice.AccessToken, org.Id, " Acme.Example. ")
		if dom.Domain != "acme.example" || dom.Verified || dom.Verification.RecordName != "_latch-verification.acme.example" ||
			dom.Verification.RecordType != client.DomainRecordTXT || !strings.HasPrefix(dom.Verification.RecordValue, "latch-domain-verification=") {
			t.Fatalf("domain: %s", mustJSON(dom))
		}
		for _, bad := range []string{"co.uk", "com", "localhost", "a..b", "exa mple.com"} {
			res, err := s.Client.CreateOrgDomainWithResponse(ctx, org.Id, client.CreateOrgDomainJSONRequestBody{Domain: bad}, testutil.Bearer(alice.AccessToken))
			if err != nil {
				t.Fatal(err)
			}
			checkErr(t, "domain "+bad, res.StatusCode(), res.Body, 400, "invalid_request")
		}
		again, _ := s.Client.CreateOrgDomainWithResponse(ctx, org.Id, client.CreateOrgDomainJSONRequestBody{Domain: "acme.example"}, testutil.Bearer(alice.AccessToken))
		checkErr(t, "the same domain twice", again.StatusCode(), again.Body, 409, "conflict")
		idn := addDomain(t, s, alice.AccessToken, org.Id, "bücher.example")
		if idn.Domain != "xn--bcher-kva.example" {
			t.Fatalf("IDNA: %s", idn.Domain)
		}

		// Only owners write; admins read; members neither.
		for who, tok := range map[string]string{"admin": carol.AccessToken, "member": bob.AccessToken} {
			res, _ := s.Client.CreateOrgDomainWithResponse(ctx, org.Id, client.CreateOrgDomainJSONRequestBody{Domain: "other.example"}, testutil.Bearer(tok))
			checkErr(t, who+" adds a domain", res.StatusCode(), res.Body, 403, "insufficient_permissions")
			v := verifyDomain(t, s, tok, org.Id, dom.Id)
			checkErr(t, who+" verifies", v.StatusCode(), v.Body, 403, "insufficient_permissions")
		}
		if l, _ := s.Client.ListOrgDomainsWithResponse(ctx, org.Id, testutil.Bearer(carol.AccessToken)); l.JSON200 == nil || len(l.JSON200.Domains) != 2 {
			t.Fatalf("admin lists domains: %d %s", l.StatusCode(), l.Body)
		}
		l, _ := s.Client.ListOrgDomainsWithResponse(ctx, org.Id, testutil.Bearer(bob.AccessToken))
		checkErr(t, "member lists domains", l.StatusCode(), l.Body, 403, "insufficient_permissions")

		// Verification by the TXT record: missing, then wrong, then right.
		v := verifyDomain(t, s, alice.AccessToken, org.Id, dom.Id)
		checkErr(t, "no record", v.StatusCode(), v.Body, 422, "domain_not_verified")
		dnsSrv.Set(dom.Verification.RecordName, "latch-domain-verification=wrong", "v=spf1 -all")
		v = verifyDomain(t, s, alice.AccessToken, org.Id, dom.Id)
		checkErr(t, "wrong record", v.StatusCode(), v.Body, 422, "domain_not_verified")

		// Before verification /auth/sso routes nothing, even with a
		// connection.
		sec := opClientSecret
		put := putSSO(t, s, alice.AccessToken, org.Id, client.PutOrgSSOJSONRequestBody{Issuer: issuer, ClientId: opClientID, ClientSecret: &sec})
		check(t, "put sso", put.StatusCode(), put.Body, 200)
		b := newBrowser(t)
		res, body := b.get(ssoURL(s, "new@acme.example"))
		checkErr(t, "unverified domain", res.StatusCode, []byte(body), 404, "sso_not_configured")

		dnsSrv.Set(dom.Verification.RecordName, "v=spf1 -all", dom.Verification.RecordValue)
		v = verifyDomain(t, s, alice.AccessToken, org.Id, dom.Id)
		if check(t, "right record", v.StatusCode(), v.Body, 200); !v.JSON200.Verified || v.JSON200.VerifiedAt == nil {
			t.Fatalf("verified: %s", v.Body)
		}
		// Removing the record later does not un-verify the domain.
		dnsSrv.Set(dom.Verification.RecordName)
		v = verifyDomain(t, s, alice.AccessToken, org.Id, dom.Id)
		if check(t, "verify again without the record", v.StatusCode(), v.Body, 200); !v.JSON200.Verified {
			t.Fatalf("un-verified: %s", v.Body)
		}

		// The connection: the secret is sealed and never returned; admins
		// read, only owners write.
		if !put.JSON200.ClientSecretSet || strings.Contains(string(put.Body), opClientSecret) || put.JSON200.DefaultRole != client.SSOConnectionDefaultRoleMember ||
			put.JSON200.CallbackUrl != s.URL+"/auth/providers/org-"+org.Id.String()+"/callback" || put.JSON200.ProviderId != "org-"+org.Id.String() {
			t.Fatalf("connection: %s", put.Body)
		}
		g, _ := s.Client.GetOrgSSOWithResponse(ctx, org.Id, testutil.Bearer(carol.AccessToken))
		if check(t, "admin reads sso", g.StatusCode(), g.Body, 200); strings.Contains(string(g.Body), opClientSecret) || !g.JSON200.ClientSecretSet {
			t.Fatalf("get: %s", g.Body)
		}
		g, _ = s.Client.GetOrgSSOWithResponse(ctx, org.Id, testutil.Bearer(bob.AccessToken))
		checkErr(t, "member reads sso", g.StatusCode(), g.Body, 403, "insufficient_permissions")
		for who, tok := range map[string]string{"admin": carol.AccessToken, "member": bob.AccessToken} {
			p := putSSO(t, s, tok, org.Id, client.PutOrgSSOJSONRequestBody{Issuer: issuer, ClientId: opClientID})
			checkErr(t, who+" puts sso", p.StatusCode(), p.Body, 403, "insufficient_permissions")
			del, _ := s.Client.DeleteOrgSSOWithResponse(ctx, org.Id, testutil.Bearer(tok))
			checkErr(t, who+" deletes sso", del.StatusCode(), del.Body, 403, "insufficient_permissions")
		}
		// An organization key holds only what its creator may grant: an
		// admin cannot grant sso:write.
		keyRes, _ := s.Client.CreateOrgAPIKeyWithResponse(ctx, org.Id, client.CreateOrgAPIKeyJSONRequestBody{Label: "k", Scopes: []string{"sso:write"}},
			testutil.Bearer(carol.AccessToken))
		checkErr(t, "admin grants sso:write", keyRes.StatusCode(), keyRes.Body, 403, "insufficient_permissions")
		// An issuer with a query, or that does not answer discovery.
		p := putSSO(t, s, alice.AccessToken, org.Id, client.PutOrgSSOJSONRequestBody{Issuer: "https://idp.example.com/?tenant=1", ClientId: opClientID})
		checkErr(t, "issuer with a query", p.StatusCode(), p.Body, 400, "invalid_request")
		p = putSSO(t, s, alice.AccessToken, org.Id, client.PutOrgSSOJSONRequestBody{Issuer: "http://127.0.0.1:1", ClientId: opClientID})
		checkErr(t, "unreachable issuer", p.StatusCode(), p.Body, 422, "invalid_provider")
		// An update without a secret keeps the stored one (the sign-ins
		// below need it).
		p = putSSO(t, s, alice.AccessToken, org.Id, client.PutOrgSSOJSONRequestBody{Issuer: issuer, ClientId: opClientID})
		if check(t, "update without secret", p.StatusCode(), p.Body, 200); !p.JSON200.ClientSecretSet {
			t.Fatalf("secret lost: %s", p.Body)
		}

		// /auth/sso sends the browser to the organization's provider with
		// the email as login_hint.
		res, body = b.get(ssoURL(s, "New@Acme.Example"))
		if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), issuer) ||
			!strings.Contains(res.Header.Get("Location"), "login_hint=new%40acme.example") {
			t.Fatalf("sso: %d %s %s", res.StatusCode, res.Header.Get("Location"), body)
		}
		res, body = b.get(ssoURL(s, "ada@unknown.example"))
		checkErr(t, "a domain without SSO", res.StatusCode, []byte(body), 404, "sso_not_configured")
		bad := strings.Replace(ssoURL(s, "new@acme.example"), url.QueryEscape(appRedirect), url.QueryEscape("https://evil.example/cb"), 1)
		res, body = b.get(bad)
		checkErr(t, "redirect_to off the list", res.StatusCode, []byte(body), 400, "invalid_request")

		// A new user signs in, lands as a member, and the tokens work.
		q := ssoSignIn(t, s, "new@acme.example", "new@acme.example")
		tok := wantCodeTokens(t, exchangeCode(t, s, q.Get("code"), appVerifier))
		if string(*tok.User.Email) != "new@acme.example" || !tok.User.EmailVerified {
			t.Fatalf("tokens: %s", mustJSON(tok))
		}
		wantAssurance(t, tok.AccessToken, "aal1", "fed")
		og, _ := s.Client.GetOrganizationWithResponse(ctx, org.Id, testutil.Bearer(tok.AccessToken))
		if check(t, "the new member gets the org", og.StatusCode(), og.Body, 200); og.JSON200.Role != client.RoleMember {
			t.Fatalf("role: %s", og.Body)
		}
		// A second sign-in finds the same user and keeps one membership.
		tok2 := wantCodeTokens(t, exchangeCode(t, s, ssoSignIn(t, s, "new@acme.example", "new@acme.example").Get("code"), appVerifier))
		if tok2.User.Id != tok.User.Id {
			t.Fatal("a second sign-in made another user")
		}
		ms, _ := s.Client.ListMembersWithResponse(ctx, org.Id, nil, testutil.Bearer(alice.AccessToken))
		if check(t, "members", ms.StatusCode(), ms.Body, 200); len(ms.JSON200.Members) != 4 {
			t.Fatalf("members: %s", ms.Body)
		}
		// The default role applies to later first sign-ins.
		admin := client.PutSSOConnectionRequestDefaultRoleAdmin
		p = putSSO(t, s, alice.AccessToken, org.Id, client.PutOrgSSOJSONRequestBody{Issuer: issuer, ClientId: opClientID, DefaultRole: &admin})
		check(t, "default role admin", p.StatusCode(), p.Body, 200)
		tok3 := wantCodeTokens(t, exchangeCode(t, s, ssoSignIn(t, s, "lead@acme.example", "lead@acme.example").Get("code"), appVerifier))
		og, _ = s.Client.GetOrganizationWithResponse(ctx, org.Id, testutil.Bearer(tok3.AccessToken))
		if check(t, "the admin gets the org", og.StatusCode(), og.Body, 200); og.JSON200.Role != client.RoleAdmin {
			t.Fatalf("role: %s", og.Body)
		}

		// Removing the connection stops /auth/sso.
		del, _ := s.Client.DeleteOrgSSOWithResponse(ctx, org.Id, testutil.Bearer(alice.AccessToken))
		check(t, "delete sso", del.StatusCode(), del.Body, 204)
		res, body = b.get(ssoURL(s, "new@acme.example"))
		checkErr(t, "after delete", res.StatusCode, []byte(body), 404, "sso_not_configured")
	})
}

// The attacks: the organization's provider asserting an address of
// another domain is refused (else any organization could take over any
// account); an existing account whose email is not verified is not
// linked (pre-hijack); a domain verified by one organization cannot be
// verified by another; a resolver that does not answer is 503.
func TestSSOAttacks(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s, dnsSrv, issuer, register := ssoServer(t, d)
		alice := signup(t, s, "alice@example.com")
		mallory := signup(t, s, "mallory@example.com")
		org := createOrg(t, s, alice.AccessToken, "Acme")
		evil := createOrg(t, s, mallory.AccessToken, "Evil")
		register(org.Id, evil.Id)
		dom := verifiedDomain(t, s, dnsSrv, alice.AccessToken, org.Id, "acme.example")
		sec := opClientSecret
		check(t, "put sso", putSSO(t, s, alice.AccessToken, org.Id, client.PutOrgSSOJSONRequestBody{Issuer: issuer, ClientId: opClientID, ClientSecret: &sec}).StatusCode(), nil, 200)

		// The organization's provider asserts another domain's address.
		q := ssoSignIn(t, s, "ada@acme.example", "victim@example.com")
		if q.Get("error") != "access_denied" || q.Get("code") != "" || !strings.Contains(q.Get("error_description"), "not in a domain the organization verified") {
			t.Fatalf("another domain's address: %v", q)
		}

		// An existing account with the address, email not verified, is not
		// linked: its owner signs in to it and links, or verifies it first.
		signupUnverified(t, s, "eve@acme.example")
		q = ssoSignIn(t, s, "eve@acme.example", "eve@acme.example")
		if q.Get("error") != "identity_not_linked" || q.Get("code") != "" {
			t.Fatalf("unverified account: %v", q)
		}
		// Verified, it is linked: the organization proved the domain.
		s.MarkVerified(t, "eve@acme.example")
		tok := wantCodeTokens(t, exchangeCode(t, s, ssoSignIn(t, s, "eve@acme.example", "eve@acme.example").Get("code"), appVerifier))
		if string(*tok.User.Email) != "eve@acme.example" {
			t.Fatalf("linked: %s", mustJSON(tok))
		}

		// Another organization cannot verify the domain, even with its own
		// record published; without verification it routes nothing.
		theirs := addDomain(t, s, mallory.AccessToken, evil.Id, "acme.example")
		dnsSrv.Set(theirs.Verification.RecordName, dom.Verification.RecordValue, theirs.Verification.RecordValue)
		v := verifyDomain(t, s, mallory.AccessToken, evil.Id, theirs.Id)
		checkErr(t, "a domain another organization verified", v.StatusCode(), v.Body, 409, "conflict")
		check(t, "evil's sso", putSSO(t, s, mallory.AccessToken, evil.Id, client.PutOrgSSOJSONRequestBody{Issuer: issuer, ClientId: opClientID, ClientSecret: &sec}).StatusCode(), nil, 200)
		beta := addDomain(t, s, mallory.AccessToken, evil.Id, "beta.example")
		b := newBrowser(t)
		res, body := b.get(ssoURL(s, "ada@beta.example"))
		checkErr(t, "an unverified domain", res.StatusCode, []byte(body), 404, "sso_not_configured")
		// Evil's connection, reached by its provider id, does not sign in
		// Acme's addresses either.
		eb := newBrowser(t)
		q = eb.callback(eb.toProvider(authorizeURL(s, "org-"+evil.Id.String()), "alice2@acme.example"))
		if q.Get("error") != "access_denied" || q.Get("code") != "" {
			t.Fatalf("another organization's connection: %v", q)
		}

		// The resolver does not answer: 503 with Retry-After.
		dnsSrv.Stop()
		v = verifyDomain(t, s, mallory.AccessToken, evil.Id, beta.Id)
		checkErr(t, "resolver down", v.StatusCode(), v.Body, 503, "unavailable")
		if v.HTTPResponse.Header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
	})
}

// require_sso: password login, signup, email codes and password recovery
// of the domain's addresses are refused with sso_required, and so is a
// configured provider's sign-in of such an address; the SSO sign-in still
// works, and other users are untouched.
func TestSSORequired(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s, dnsSrv, issuer, register := ssoServer(t, d)
		ctx := context.Background()
		alice := signup(t, s, "alice@example.com")
		org := createOrg(t, s, alice.AccessToken, "Acme")
		register(org.Id)
		verifiedDomain(t, s, dnsSrv, alice.AccessToken, org.Id, "acme.example")
		signup(t, s, "eve@acme.example")
		sec := opClientSecret
		check(t, "put sso", putSSO(t, s, alice.AccessToken, org.Id, client.PutOrgSSOJSONRequestBody{Issuer: issuer, ClientId: opClientID, ClientSecret: &sec}).StatusCode(), nil, 200)
		// Not required yet: the password works, and a code is mailed.
		if l := login(s, "eve@acme.example", goodPassword); l.JSON200 == nil {
			t.Fatalf("login before require_sso: %s", l.Body)
		}
		box := &mailbox{}
		flush(t, s, box) // the signups' verification mails
		code, _ := otpMail(t, s, box, "eve@acme.example", false)

		on := true
		check(t, "require sso", putSSO(t, s, alice.AccessToken, org.Id, client.PutOrgSSOJSONRequestBody{Issuer: issuer, ClientId: opClientID, RequireSso: &on}).StatusCode(), nil, 200)

		l := login(s, "eve@acme.example", goodPassword)
		checkErr(t, "password login", l.StatusCode(), l.Body, 403, "sso_required")
		l = login(s, "nobody@acme.example", "wrong password")
		checkErr(t, "login of an unknown address", l.StatusCode(), l.Body, 403, "sso_required")
		su, _ := s.Client.SignupWithResponse(ctx, client.SignupJSONRequestBody{Email: "zed@acme.example", Password: goodPassword})
		checkErr(t, "signup", su.StatusCode(), su.Body, 403, "sso_required")
		st, body := askOTP(t, s, "eve@acme.example", false, "")
		checkErr(t, "email code", st, body, 403, "sso_required")
		vr := verifyOTPCode(s, "eve@acme.example", code)
		checkErr(t, "a code mailed before", vr.StatusCode(), vr.Body, 403, "sso_required")
		fp, _ := s.Client.ForgotPasswordWithResponse(ctx, client.ForgotPasswordJSONRequestBody{Email: "eve@acme.example"})
		checkErr(t, "password recovery", fp.StatusCode(), fp.Body, 403, "sso_required")
		// A configured provider does not sign the domain's addresses in.
		q := signInWith(t, s, "op", "eve@acme.example")
		if q.Get("error") != "sso_required" || q.Get("code") != "" {
			t.Fatalf("configured provider: %v", q)
		}

		// The organization's connection still signs eve in.
		tok := wantCodeTokens(t, exchangeCode(t, s, ssoSignIn(t, s, "eve@acme.example", "eve@acme.example").Get("code"), appVerifier))
		if string(*tok.User.Email) != "eve@acme.example" {
			t.Fatalf("sso: %s", mustJSON(tok))
		}
		// Other users are untouched.
		if l := login(s, "alice@example.com", goodPassword); l.JSON200 == nil {
			t.Fatalf("alice: %s", l.Body)
		}
		if st, body := askOTP(t, s, "alice@example.com", false, ""); st != 202 {
			t.Fatalf("alice's code: %d %s", st, body)
		}
	})
}

// A connection changed through one instance applies at the next sign-in
// through another: each instance caches the connection it built only while
// the stored one is the same.
func TestSSOAcrossInstances(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		issuer, register := startOIDCProvider(t)
		dnsSrv := testutil.StartDNS(t)
		dbURL := testutil.DatabaseURL(t, d)
		a := testutil.StartURL(t, dbURL, withProviders(), dnsSrv.Option, ssoAllowPrivate)
		b := testutil.StartURL(t, dbURL, withProviders(), dnsSrv.Option, ssoAllowPrivate)
		alice := signup(t, a, "alice@example.com")
		org := createOrg(t, a, alice.AccessToken, "Acme")
		register(a.URL+"/auth/providers/org-"+org.Id.String()+"/callback", b.URL+"/auth/providers/org-"+org.Id.String()+"/callback")
		verifiedDomain(t, a, dnsSrv, alice.AccessToken, org.Id, "acme.example")
		put := func(secret string) {
			t.Helper()
			res := putSSO(t, a, alice.AccessToken, org.Id, client.PutOrgSSOJSONRequestBody{Issuer: issuer, ClientId: opClientID, ClientSecret: &secret})
			check(t, "put sso", res.StatusCode(), res.Body, 200)
		}
		put(opClientSecret)
		wantCodeTokens(t, exchangeCode(t, b, ssoSignIn(t, b, "ada@acme.example", "ada@acme.example").Get("code"), appVerifier))
		// A wrong secret set through a: b's next sign-in uses it, and the
		// provider refuses the code.
		put("not-the-secret")
		if q := ssoSignIn(t, b, "ada@acme.example", "ada@acme.example"); q.Get("error") != "invalid_request" || q.Get("code") != "" {
			t.Fatalf("b kept the old connection: %v", q)
		}
		put(opClientSecret)
		wantCodeTokens(t, exchangeCode(t, b, ssoSignIn(t, b, "ada@acme.example", "ada@acme.example").Get("code"), appVerifier))
	})
}

// An organization's owner is anyone who signed up: without
// LATCH_SSO_ALLOW_PRIVATE its connection cannot make Latch reach inside the
// network. The issuer must be https and no private address literal, and a
// name that resolves to one is refused by the dialer (so is every later
// request to the provider, through the same client).
func TestSSOIssuerStaysOutside(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		issuer, register := startOIDCProvider(t)
		s := testutil.Start(t, d, withProviders())
		alice := signup(t, s, "alice@example.com")
		org := createOrg(t, s, alice.AccessToken, "Acme")
		register(s.URL + "/auth/providers/org-" + org.Id.String() + "/callback")
		sec := opClientSecret
		for _, c := range []struct {
			issuer string
			status int
			code   string
		}{
			{issuer, 400, "invalid_request"},                         // http, on loopback
			{"https://127.0.0.1:1", 400, "invalid_request"},          // a loopback literal
			{"https://[::1]:1", 400, "invalid_request"},              // another
			{"https://10.1.2.3", 400, "invalid_request"},             // a private one
			{"https://169.254.169.254", 400, "invalid_request"},      // the cloud metadata service
			{"https://localhost:1", 422, "invalid_provider"},         // a name that resolves to loopback
			{"https://user@idp.example.com", 400, "invalid_request"}, // user information
		} {
			p := putSSO(t, s, alice.AccessToken, org.Id, client.PutOrgSSOJSONRequestBody{Issuer: c.issuer, ClientId: opClientID, ClientSecret: &sec})
			checkErr(t, c.issuer, p.StatusCode(), p.Body, c.status, c.code)
		}
	})
}

// require_sso holds for every spelling of the domain that reaches the same
// mailboxes: an address of the verified domain's Unicode form (or of its
// upper case) is that domain's, as the provider's assertion of it is.
func TestSSORequiredForInternationalDomains(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s, dnsSrv, issuer, register := ssoServer(t, d)
		ctx := context.Background()
		alice := signup(t, s, "alice@example.com")
		org := createOrg(t, s, alice.AccessToken, "Bücher")
		register(org.Id)
		if dom := verifiedDomain(t, s, dnsSrv, alice.AccessToken, org.Id, "bücher.example"); dom.Domain != "xn--bcher-kva.example" {
			t.Fatalf("stored domain %q", dom.Domain)
		}
		signup(t, s, "eve@bücher.example")
		on := true
		sec := opClientSecret
		check(t, "require sso", putSSO(t, s, alice.AccessToken, org.Id, client.PutOrgSSOJSONRequestBody{Issuer: issuer, ClientId: opClientID, ClientSecret: &sec, RequireSso: &on}).StatusCode(), nil, 200)

		for _, addr := range []string{"eve@bücher.example", "eve@BÜCHER.example", "eve@xn--bcher-kva.example"} {
			l := login(s, addr, goodPassword)
			checkErr(t, "password login of "+addr, l.StatusCode(), l.Body, 403, "sso_required")
			su, _ := s.Client.SignupWithResponse(ctx, client.SignupJSONRequestBody{Email: client.Email(addr), Password: goodPassword})
			checkErr(t, "signup of "+addr, su.StatusCode(), su.Body, 403, "sso_required")
		}
		// Another domain is untouched.
		if l := login(s, "alice@example.com", goodPassword); l.JSON200 == nil {
			t.Fatalf("alice: %s", l.Body)
		}
	})
}

// The per-IP sign-in limit (login-ip) is taken before any lookup that
// starting a sign-in makes: once it is spent, asking /auth/sso about a
// domain, or a provider's authorize about a provider, is refused with 429
// before either is looked up (not 404, which would be the lookup's answer).
func TestSignInStartsTakeTheLimitFirst(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, withProviders(), func(c *app.Config) {
			c.RateLimits = true
			c.Limits.LoginIP = ratelimit.Rule{Burst: 2, Per: time.Hour}
		})
		hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		get := func(u string) (int, []byte) {
			t.Helper()
			res, err := hc.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, b
		}
		st, body := get(ssoURL(s, "ann@nowhere.example"))
		checkErr(t, "sso, first", st, body, 404, "sso_not_configured")
		st, body = get(authorizeURL(s, "nope"))
		checkErr(t, "authorize, second", st, body, 404, "not_found")
		st, body = get(ssoURL(s, "bob@elsewhere.example"))
		checkErr(t, "sso, limit spent", st, body, 429, "rate_limited")
		st, body = get(authorizeURL(s, "nope"))
		checkErr(t, "authorize, limit spent", st, body, 429, "rate_limited")
	})
}

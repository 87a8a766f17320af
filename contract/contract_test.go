// Package contract holds the contract tests: a running latchd on a real store
// is driven through every operation of openapi.yaml, first with well-formed
// requests in a scripted flow, then with malformed requests derived from the
// spec's own schemas by a seeded generator. Every response must be declared
// by the spec and match it; no input may produce a 5xx.
package contract

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/service"
	"github.com/latchauth/latch/internal/testutil"
)

var (
	seed  = flag.Uint64("contract.seed", 1, "seed of the malformed-request generator")
	count = flag.Int("contract.count", 40, "random malformed requests per operation, beyond the systematic ones")
)

// latchd is a running server on a loopback port.
type latchd struct {
	app    *app.App
	base   string
	http   *http.Client
	fields fields
	// dns answers the TXT lookups of domain verification (sso_test.go).
	dns *testutil.DNS
}

func start(t *testing.T) *latchd {
	t.Helper()
	c := testutil.Config(t, testutil.DatabaseURL(t, "sqlite"))
	// The contract run signs up and goes on to create API keys at once.
	c.AutoconfirmEmail = true
	// The import and impersonation steps act as adminEmail; the flow's
	// own user is an operator too (once verifyOperator records the
	// verification), so that the admin operations on users run, and the
	// malformed phase reaches their deepest checks.
	c.APIKeys.OperatorEmails = []string{adminEmail, "flow@example.com"}
	// The webhook flow's receiver listens on loopback.
	c.Webhooks.AllowPrivate = true
	dns := testutil.StartDNS(t)
	dns.Option(&c)
	// The SSO flow's issuer is a closed port on loopback (sso_test.go).
	c.SSOAllowPrivate = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Provider sign-in through the GitHub preset and its local stand-in
	// (providers_test.go; the trip keeps the paths of the public URL's
	// redirects and sends them here).
	c.Providers = []service.ProviderConfig{githubStandIn(t)}
	c.RedirectURLs = []string{appRedirect}
	a, err := app.New(context.Background(), c, nil, nil)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done; a.Close() })
	// Redirects (the provider sign-in's) are answers to check, not to follow.
	return &latchd{base: "http://" + ln.Addr().String(), app: a, dns: dns, http: &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// verifyOperator records the verification of the email a second ago, as
// its link would: an autoconfirmed account is never an operator.
func (l *latchd) verifyOperator(t *testing.T, email string) {
	t.Helper()
	at := time.Now().Add(-time.Second).UTC().Format("2006-01-02 15:04:05.000000+00:00")
	if _, err := l.app.Store.DB().Exec(`UPDATE users SET email_verified_at = ? WHERE email = ?`, at, email); err != nil {
		t.Fatal(err)
	}
}

type call struct {
	method, path, contentType string
	body                      []byte
	header                    http.Header
}

// send performs the call and validates the response against the spec.
func (l *latchd) send(t *testing.T, c call) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(c.method, l.base+c.path, bytes.NewReader(c.body))
	if err != nil {
		t.Fatalf("build %s %s: %v", c.method, c.path, err)
	}
	if c.body == nil {
		req.Body = http.NoBody
	}
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	res, err := l.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	if err := testutil.ValidateResponse(req, res); err != nil {
		t.Errorf("%v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if _, router, err := testutil.Spec(); err == nil {
		l.fields.record(t, router, req, res, b)
	}
	if res.StatusCode >= 500 {
		t.Errorf("%s %s -> %d: %s (body %.200q)", c.method, c.path, res.StatusCode, b, c.body)
	}
	return res, b
}

func (l *latchd) json(t *testing.T, method, path string, body any, hdr http.Header, want int) map[string]any {
	t.Helper()
	var b []byte
	ct := ""
	if body != nil {
		b, _ = json.Marshal(body)
		ct = "application/json"
	}
	res, out := l.send(t, call{method: method, path: path, contentType: ct, body: b, header: hdr})
	if res.StatusCode != want {
		t.Fatalf("%s %s -> %d, want %d: %s", method, path, res.StatusCode, want, out)
	}
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	return m
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// fixture is what the scripted flow creates, for the malformed phase to use.
type fixture struct {
	access, refresh, sessionID, userID string
	// victimID is the user the admin operations act on in the malformed
	// phase (which would otherwise end the flow's own session).
	victimID             string
	apiKey, keyID, orgID string
}

// flow exercises every operation once with well-formed requests.
func flow(t *testing.T, l *latchd) (*fixture, map[string]bool) {
	t.Helper()
	covered := map[string]bool{}
	op := func(id string) { covered[id] = true }
	f := &fixture{}
	l.json(t, "GET", "/health", nil, nil, 200)
	op("getHealth")
	l.json(t, "GET", "/.well-known/jwks.json", nil, nil, 200)
	op("getJWKS")
	l.send(t, call{method: "GET", path: "/docs"})
	op("getDocs")
	l.json(t, "GET", "/health/ready", nil, nil, 200)
	op("getReadiness")
	l.json(t, "GET", "/.well-known/openid-configuration", nil, nil, 200)
	op("getOpenIDConfiguration")
	l.json(t, "GET", "/.well-known/oauth-authorization-server", nil, nil, 200)
	op("getAuthorizationServerMetadata")
	for path, id := range map[string]string{"/favicon.ico": "getFavicon", "/reset-password": "getResetPasswordPage",
		"/verify-email": "getVerifyEmailPage", "/accept-invitation": "getAcceptInvitationPage"} {
		if res, body := l.send(t, call{method: "GET", path: path}); res.StatusCode != 200 {
			t.Fatalf("GET %s -> %d: %.200s", path, res.StatusCode, body)
		}
		op(id)
	}
	l.send(t, call{method: "GET", path: "/openapi.yaml"})
	op("getSpecYAML")
	l.json(t, "GET", "/openapi.json", nil, nil, 200)
	op("getSpecJSON")
	cred := map[string]any{"email": "flow@example.com", "password": "correct horse battery staple"}
	su := l.json(t, "POST", "/auth/signup", cred, nil, 201)
	op("signup")
	l.verifyOperator(t, "flow@example.com")
	li := l.json(t, "POST", "/auth/login", cred, nil, 200)
	op("login")
	f.access, f.refresh = li["access_token"].(string), li["refresh_token"].(string)
	f.sessionID = li["session_id"].(string)
	f.userID = su["user"].(map[string]any)["id"].(string)
	l.json(t, "GET", "/auth/me", nil, bearer(f.access), 200)
	op("getMe")
	rf := l.json(t, "POST", "/auth/refresh", map[string]any{"refresh_token": f.refresh}, nil, 200)
	op("refresh")
	f.access, f.refresh = rf["access_token"].(string), rf["refresh_token"].(string)
	l.json(t, "GET", "/sessions", nil, bearer(f.access), 200)
	op("listSessions")
	l.json(t, "GET", "/sessions/"+f.sessionID, nil, bearer(f.access), 200)
	op("getSession")
	l.json(t, "POST", "/sessions/"+f.sessionID+"/renew", nil, bearer(f.access), 200)
	op("renewSession")
	other := l.json(t, "POST", "/auth/login", cred, nil, 200)
	l.json(t, "DELETE", "/sessions/"+other["session_id"].(string), nil, bearer(f.access), 204)
	op("revokeSession")
	extendedFlow(t, l, f, op)
	importFlow(t, l, f, op)
	providersFlow(t, l, f, op)
	// Logout last: it ends the flow's session.
	spare := l.json(t, "POST", "/auth/login", cred, nil, 200)
	l.json(t, "POST", "/auth/logout?scope=local", nil, bearer(spare["access_token"].(string)), 204)
	op("logout")
	return f, covered
}

func TestContract(t *testing.T) {
	l := start(t)
	f, covered := flow(t, l)
	doc, _, err := testutil.Spec()
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, p := range doc.Paths.Map() {
		for _, o := range p.Operations() {
			if !covered[o.OperationID] {
				missing = append(missing, o.OperationID)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("operations the scripted flow does not exercise: %v", missing)
	}
	checkFields(t, &l.fields)
	t.Run("malformed", func(t *testing.T) { malformed(t, l, doc, f) })
}

// malformed sends, for every operation, systematic and random malformed
// requests derived from its schemas, with valid credentials so that they
// reach the deepest checks.
func malformed(t *testing.T, l *latchd, doc *openapi3.T, f *fixture) {
	rng := rand.New(rand.NewPCG(*seed, *seed^0x9e3779b97f4a7c15))
	paths := doc.Paths.Map()
	keys := make([]string, 0, len(paths))
	for p := range paths {
		keys = append(keys, p)
	}
	sort.Strings(keys)
	sent := 0
	for _, p := range keys {
		item := paths[p]
		ops := item.Operations()
		methods := make([]string, 0, len(ops))
		for m := range ops {
			methods = append(methods, m)
		}
		sort.Strings(methods)
		for _, m := range methods {
			o := ops[m]
			g := &gen{rng: rng, f: f}
			for _, c := range g.calls(m, p, item, o, *count) {
				l.send(t, c)
				sent++
			}
		}
	}
	t.Logf("sent %d malformed requests (seed %d)", sent, *seed)
}

type gen struct {
	rng *rand.Rand
	f   *fixture
}

func (g *gen) auth(o *openapi3.Operation) http.Header {
	h := http.Header{}
	if o.Security != nil && len(*o.Security) > 0 {
		for _, req := range *o.Security {
			if _, ok := req["bearerAuth"]; ok {
				h.Set("Authorization", "Bearer "+g.f.access)
				return h
			}
			if _, ok := req["apiKeyAuth"]; ok && g.f.apiKey != "" {
				h.Set("X-API-Key", g.f.apiKey)
				return h
			}
		}
		return h
	}
	if o.Security == nil { // the document default: bearer
		h.Set("Authorization", "Bearer "+g.f.access)
	}
	return h
}

// fillPath substitutes valid ids of the fixture for path parameters.
func (g *gen) fillPath(path string) string {
	user := g.f.userID
	if strings.HasPrefix(path, "/admin/") {
		user = orUUID(g.f.victimID)
	}
	r := strings.NewReplacer("{session_id}", g.f.sessionID, "{key_id}", orUUID(g.f.keyID), "{org_id}", orUUID(g.f.orgID), "{user_id}", user)
	return r.Replace(path)
}

func orUUID(s string) string {
	if s == "" {
		return "00000000-0000-4000-8000-000000000000"
	}
	return s
}

func (g *gen) calls(method, path string, item *openapi3.PathItem, o *openapi3.Operation, n int) []call {
	hdr := g.auth(o)
	good := g.fillPath(path)
	var out []call
	add := func(c call) {
		if c.header == nil {
			c.header = hdr.Clone()
		}
		out = append(out, c)
	}
	// Bad path parameters.
	if strings.Contains(path, "{") {
		for _, bad := range []string{"not-a-uuid", "00000000-0000-0000-0000-00000000000Z", strings.Repeat("a", 300), "%00", "..%2F..%2F"} {
			add(call{method: method, path: strings.NewReplacer("{session_id}", bad, "{key_id}", bad, "{org_id}", bad, "{user_id}", bad).Replace(path)})
		}
	}
	// Bad credentials.
	add(call{method: method, path: good, header: http.Header{"Authorization": {"Bearer " + strings.Repeat("x", 5000)}}})
	add(call{method: method, path: good, header: http.Header{"Authorization": {"Bearer a.b.c"}}})
	add(call{method: method, path: good, header: http.Header{"X-API-Key": {"latch_u_" + strings.Repeat("0", 38)}}})
	add(call{method: method, path: good, header: http.Header{"Authorization": {"Basic !!!"}}})
	// Bad query parameters.
	params := append(openapi3.Parameters{}, item.Parameters...)
	params = append(params, o.Parameters...)
	for _, pr := range params {
		if pr.Value.In != "query" {
			continue
		}
		for _, v := range []string{"", "-1", "99999999999999999999", "not-valid", strings.Repeat("z", 400), "%ff"} {
			// An empty boolean is an absent one (kin-openapi and the
			// generated binding agree), so it is no malformed request: on
			// logout it would end the fixture's session.
			if v == "" && pr.Value.Schema != nil && pr.Value.Schema.Value.Type.Is("boolean") {
				continue
			}
			add(call{method: method, path: good + "?" + pr.Value.Name + "=" + v})
		}
	}
	// Bad bodies.
	if o.RequestBody != nil {
		for ct, mt := range o.RequestBody.Value.Content {
			if ct != "application/json" {
				add(call{method: method, path: good, contentType: ct, body: []byte("%%%=&=&" + strings.Repeat("a", 100))})
				continue
			}
			schema := mt.Schema.Value
			valid := example(schema)
			for _, body := range g.bodies(schema, valid, n) {
				add(call{method: method, path: good, contentType: "application/json", body: body})
			}
		}
		add(call{method: method, path: good, contentType: "application/json", body: bytes.Repeat([]byte(" "), 70<<10)})
		add(call{method: method, path: good, contentType: "application/xml", body: []byte("<a/>")})
		add(call{method: method, path: good, contentType: "application/json; charset=latin1", body: []byte("{}")})
		add(call{method: method, path: good, contentType: "application/json"})
	}
	return out
}

// example builds a valid value from a schema's examples and defaults.
func example(s *openapi3.Schema) map[string]any {
	out := map[string]any{}
	for name, p := range s.Properties {
		switch {
		case p.Value.Example != nil:
			out[name] = p.Value.Example
		case p.Value.Default != nil:
			out[name] = p.Value.Default
		}
	}
	return out
}

func (g *gen) bodies(s *openapi3.Schema, valid map[string]any, n int) [][]byte {
	var out [][]byte
	enc := func(v any) {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		out = append(out, b)
	}
	raw := func(s string) { out = append(out, []byte(s)) }
	raw(`{`)
	raw(`null`)
	raw(`[]`)
	raw(`"string"`)
	raw(`{"a":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`)
	raw("{\"\xff\":1}")
	enc(map[string]any{})
	for _, req := range s.Required { // each required field missing
		m := clone(valid)
		delete(m, req)
		enc(m)
	}
	extra := clone(valid)
	extra["unexpected_field"] = true
	enc(extra)
	names := make([]string, 0, len(s.Properties))
	for name := range s.Properties {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := s.Properties[name].Value
		for _, bad := range badValues(p) {
			m := clone(valid)
			m[name] = bad
			enc(m)
		}
		upper := clone(valid)
		delete(upper, name)
		upper[strings.ToUpper(name[:1])+name[1:]] = valid[name]
		enc(upper)
	}
	for i := 0; i < n; i++ { // random mutations
		m := clone(valid)
		for _, name := range names {
			if g.rng.IntN(3) == 0 {
				m[name] = g.randomValue(3)
			}
		}
		if g.rng.IntN(4) == 0 && len(names) > 0 {
			delete(m, names[g.rng.IntN(len(names))])
		}
		enc(m)
	}
	return out
}

func badValues(p *openapi3.Schema) []any {
	vals := []any{nil, true, 12345, 1.5, []any{1}, map[string]any{"x": 1}, ""}
	if p.MaxLength != nil {
		vals = append(vals, strings.Repeat("a", int(*p.MaxLength)+1))
	}
	if p.Max != nil {
		vals = append(vals, *p.Max+1)
	}
	if p.Min != nil {
		vals = append(vals, *p.Min-1)
	}
	switch p.Format {
	case "email":
		vals = append(vals, "not-an-email", "a@b@c", "<a@b.c>", "a@example.com\n")
	case "uuid":
		vals = append(vals, "not-a-uuid")
	case "date-time":
		vals = append(vals, "yesterday", "2030-13-45T25:61:61Z")
	}
	if len(p.Enum) > 0 {
		vals = append(vals, "not-in-the-enum")
	}
	if p.Items != nil {
		vals = append(vals, []any{"BAD SCOPE"}, []any{"a:b", "a:b"}, make([]any, 60))
	}
	return vals
}

func (g *gen) randomValue(depth int) any {
	switch g.rng.IntN(8) {
	case 0:
		return nil
	case 1:
		return g.rng.IntN(2) == 0
	case 2:
		return g.rng.Int64() - g.rng.Int64()
	case 3:
		return g.rng.Float64() * 1e300
	case 4:
		b := make([]byte, g.rng.IntN(64))
		for i := range b {
			b[i] = byte(g.rng.IntN(256))
		}
		return string(b)
	case 5:
		return strings.Repeat(string(rune('a'+g.rng.IntN(26))), g.rng.IntN(2000))
	case 6:
		if depth == 0 {
			return "leaf"
		}
		return []any{g.randomValue(depth - 1), g.randomValue(depth - 1)}
	default:
		if depth == 0 {
			return 0
		}
		return map[string]any{fmt.Sprint(g.rng.IntN(100)): g.randomValue(depth - 1)}
	}
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

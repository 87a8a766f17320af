package server_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/service"
	"github.com/latchauth/latch/internal/testutil"
	"github.com/latchauth/latch/internal/token"
	"github.com/latchauth/latch/internal/webhook"
)

// receiver is a webhook receiver on loopback that records what it gets and
// answers with status() (200 when nil).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	status func(n int) int
}

type received struct {
	method, path string
	header       http.Header
	body         []byte
}

func newReceiver(t *testing.T, status func(n int) int) *receiver {
	r := &receiver{status: status}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{req.Method, req.URL.Path, req.Header.Clone(), b})
		n := len(r.got)
		r.mu.Unlock()
		st := 200
		if r.status != nil {
			st = r.status(n)
		}
		if st >= 300 && st < 400 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(st)
		fmt.Fprintf(w, "answer %d", n)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// webhookOpts lets endpoints on loopback be used, makes opsEmail an
// operator, and seals secrets under a master key.
func webhookOpts(c *app.Config) {
	c.MasterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	c.Webhooks.AllowPrivate = true
	c.APIKeys.OperatorEmails = []string{opsEmail}
}

// operator signs the operator up and returns their session's token.
func operator(t *testing.T, s *testutil.Server) string {
	t.Helper()
	tok := signup(t, s, opsEmail)
	s.MarkVerified(t, opsEmail)
	return tok.AccessToken
}

func createAdminWebhook(t *testing.T, s *testutil.Server, tok, url string, types ...string) *client.WebhookEndpointWithSecret {
	t.Helper()
	body := client.CreateAdminWebhookJSONRequestBody{Url: url}
	if types != nil {
		body.EventTypes = &types
	}
	res, err := s.Client.CreateAdminWebhookWithResponse(context.Background(), body, testutil.Bearer(tok))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "create webhook", res.StatusCode(), res.Body, http.StatusCreated)
	return res.JSON201
}

// emit writes an outbound event as a change would.
func emit(t *testing.T, s *testutil.Server, typ string, org *uuid.UUID) uuid.UUID {
	t.Helper()
	e := &domain.OutboundEvent{ID: uuid.New(), Type: typ, OrgID: org, Data: map[string]any{"hello": "world"}, CreatedAt: s.Clock.Now()}
	if err := s.App.Store.EmitEvent(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	return e.ID
}

func drain(t *testing.T, s *testutil.Server) int {
	t.Helper()
	n, err := s.App.Webhooks.Drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// verifySignature recomputes the Standard Webhooks signature on its own:
// HMAC-SHA256 over "id.timestamp.body" keyed with the secret's base64 part,
// and wants it among the header's signatures.
func verifySignature(t *testing.T, secret string, r received) {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) < 24 || len(key) > 64 {
		t.Fatalf("secret %q: want whsec_ and the base64 of 24 to 64 bytes", secret)
	}
	id, ts := r.header.Get("webhook-id"), r.header.Get("webhook-timestamp")
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		t.Fatalf("webhook-timestamp %q is not Unix seconds", ts)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(r.body)
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	for _, sig := range strings.Split(r.header.Get("webhook-signature"), " ") {
		if sig == want {
			return
		}
	}
	t.Fatalf("no signature %s in %q", want, r.header.Get("webhook-signature"))
}

func deliveries(t *testing.T, s *testutil.Server, tok string, id uuid.UUID) []client.WebhookDelivery {
	t.Helper()
	res, err := s.Client.ListAdminWebhookDeliveriesWithResponse(context.Background(), id, nil, testutil.Bearer(tok))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "deliveries", res.StatusCode(), res.Body, 200)
	return res.JSON200.Deliveries
}

// TestWebhookDeliveredAfterRetry: a message is signed as Standard Webhooks
// says, a 500 is retried after the schedule's first delay with the same
// webhook-id, the log shows both attempts, and a redelivery sends it again.
func TestWebhookDeliveredAfterRetry(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, webhookOpts)
		ctx := context.Background()
		rcv := newReceiver(t, func(n int) int {
			if n == 1 {
				return 500
			}
			return 204
		})
		tok := operator(t, s)
		ep := createAdminWebhook(t, s, tok, rcv.srv.URL+"/hook")
		if !strings.HasPrefix(ep.Secret, "whsec_") || !ep.Enabled || len(ep.EventTypes) != 0 {
			t.Fatalf("created: %+v", ep)
		}
		// The secret is shown once: reads do not carry it, and the store
		// keeps no plain copy of it.
		g, _ := s.Client.GetAdminWebhookWithResponse(ctx, ep.Id, testutil.Bearer(tok))
		check(t, "get", g.StatusCode(), g.Body, 200)
		if strings.Contains(string(g.Body), ep.Secret) {
			t.Fatal("the secret is shown again")
		}
		var stored []byte
		if err := s.App.Store.DB().QueryRow(rebind(d, `SELECT secret FROM webhook_endpoints WHERE id = ?`), ep.Id.String()).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if !token.IsSealed(stored) || strings.Contains(string(stored), strings.TrimPrefix(ep.Secret, "whsec_")) {
			t.Fatal("the secret is stored in plain form")
		}
		evID := emit(t, s, domain.OutUserCreated, nil)
		if n := drain(t, s); n != 1 {
			t.Fatalf("first pass claimed %d", n)
		}
		if n := drain(t, s); n != 0 {
			t.Fatalf("a failed message was retried before its delay: %d", n)
		}
		s.Clock.Advance(6 * time.Second)
		if n := drain(t, s); n != 1 {
			t.Fatalf("retry pass claimed %d", n)
		}
		got := rcv.all()
		if len(got) != 2 {
			t.Fatalf("%d requests", len(got))
		}
		for _, r := range got {
			verifySignature(t, ep.Secret, r)
			if err := webhook.Verify(ep.Secret, r.header, r.body, s.Clock.Now(), time.Minute); err != nil {
				t.Fatal(err)
			}
			if r.header.Get("webhook-id") != evID.String() {
				t.Fatalf("webhook-id %q, want the event id %s", r.header.Get("webhook-id"), evID)
			}
		}
		var env struct {
			Type      string         `json:"type"`
			Timestamp time.Time      `json:"timestamp"`
			Seq       int64          `json:"seq"`
			Data      map[string]any `json:"data"`
		}
		if err := json.Unmarshal(got[1].body, &env); err != nil || env.Type != domain.OutUserCreated || env.Data["hello"] != "world" || env.Seq == 0 || env.Timestamp.IsZero() {
			t.Fatalf("envelope %s (%v)", got[1].body, err)
		}
		ds := deliveries(t, s, tok, ep.Id)
		if len(ds) != 2 || ds[0].StatusCode == nil || *ds[0].StatusCode != 204 || ds[1].StatusCode == nil || *ds[1].StatusCode != 500 ||
			ds[0].Attempt != 2 || ds[1].Attempt != 1 || ds[1].Error == "" || ds[0].Error != "" || ds[1].ResponseExcerpt != "answer 1" || ds[0].MessageId != evID {
			t.Fatalf("deliveries: %+v", ds)
		}
		// Redelivery sends the same message again, at once.
		rd, _ := s.Client.RedeliverAdminWebhookMessageWithResponse(ctx, ep.Id, evID, testutil.Bearer(tok))
		check(t, "redeliver", rd.StatusCode(), rd.Body, 202)
		drain(t, s)
		if got := rcv.all(); len(got) != 3 || got[2].header.Get("webhook-id") != evID.String() {
			t.Fatalf("after redelivery: %d requests", len(got))
		}
		rd, _ = s.Client.RedeliverAdminWebhookMessageWithResponse(ctx, ep.Id, uuid.New(), testutil.Bearer(tok))
		checkErr(t, "redeliver an unknown message", rd.StatusCode(), rd.Body, 404, "not_found")
		if v := metricValue(t, s, `latch_webhook_attempts_total{result="delivered"}`); v != 2 {
			t.Fatalf("delivered attempts metric: %v", v)
		}
		// Past the event retention, the delivered message and its log go.
		s.Clock.Advance(91 * 24 * time.Hour)
		pruned, err := s.App.Service.Pruner().Prune(ctx)
		if err != nil || pruned[domain.PruneWebhookMessages] != 1 || pruned[domain.PruneWebhookAttempts] != 3 {
			t.Fatalf("pruned %v (%v), want the message and its 3 attempts", pruned, err)
		}
	})
}

// TestWebhookRedirectNotFollowedAndScheduleEnds: a 3xx is a failure and
// its Location is never requested; after the last retry of the schedule the
// message is failed and no longer sent.
func TestWebhookRedirectNotFollowedAndScheduleEnds(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, webhookOpts)
		rcv := newReceiver(t, func(int) int { return 302 })
		tok := operator(t, s)
		ep := createAdminWebhook(t, s, tok, rcv.srv.URL+"/hook", domain.OutSessionCreated)
		emit(t, s, domain.OutUserCreated, nil) // not a type it wants
		emit(t, s, domain.OutSessionCreated, nil)
		sched := s.App.Webhooks.Config().Schedule
		for i := 0; i <= len(sched); i++ {
			if n := drain(t, s); n != 1 {
				t.Fatalf("attempt %d: claimed %d", i+1, n)
			}
			if i < len(sched) {
				s.Clock.Advance(sched[i] + sched[i]/10 + time.Second)
			}
		}
		s.Clock.Advance(48 * time.Hour)
		if n := drain(t, s); n != 0 {
			t.Fatalf("a failed message was claimed again: %d", n)
		}
		got := rcv.all()
		if len(got) != len(sched)+1 {
			t.Fatalf("%d requests, want %d", len(got), len(sched)+1)
		}
		for _, r := range got {
			if r.method != http.MethodPost || r.path != "/hook" {
				t.Fatalf("%s %s: the redirect was followed", r.method, r.path)
			}
		}
		ds := deliveries(t, s, login(s, opsEmail, goodPassword).JSON200.AccessToken, ep.Id)
		if len(ds) != len(sched)+1 || !strings.Contains(ds[0].Error, "redirect") {
			t.Fatalf("deliveries: %+v", ds[0])
		}
		if v := metricValue(t, s, `latch_webhook_failures_total`); v != 1 {
			t.Fatalf("failures metric: %v", v)
		}
	})
}

// disabledMails returns the mails about a disabled endpoint sent since the
// last flush, by recipient.
func disabledMails(t *testing.T, s *testutil.Server) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range flush(t, s, &mailbox{}) {
		if strings.Contains(m.Subject, "webhook endpoint was disabled") {
			out[m.To] = m.Text
		}
	}
	return out
}

// TestWebhookEndpointDisabledAfterFiveDaysOfFailures: an endpoint whose
// attempts all fail for five days is disabled, its owners (the operators,
// or the organization's owners) are mailed, and it gets no more messages
// until it is enabled again.
func TestWebhookEndpointDisabledAfterFiveDaysOfFailures(t *testing.T) {
	s := testutil.Start(t, "sqlite", webhookOpts)
	ctx := context.Background()
	rcv := newReceiver(t, func(int) int { return 503 })
	tok := operator(t, s)
	alice := signup(t, s, "alice@example.com")
	org := createOrg(t, s, alice.AccessToken, "Acme")
	ores, _ := s.Client.CreateOrgWebhookWithResponse(ctx, org.Id, client.CreateOrgWebhookJSONRequestBody{Url: rcv.srv.URL + "/org"}, testutil.Bearer(alice.AccessToken))
	check(t, "org endpoint", ores.StatusCode(), ores.Body, 201)
	ep := createAdminWebhook(t, s, tok, rcv.srv.URL)
	disabledMails(t, s)
	emit(t, s, domain.OutUserCreated, &org.Id)
	drain(t, s)
	if m := disabledMails(t, s); len(m) != 0 {
		t.Fatalf("mails after one failure: %v", m)
	}
	s.Clock.Advance(5*24*time.Hour + time.Minute)
	tok = login(s, opsEmail, goodPassword).JSON200.AccessToken
	tr, _ := s.Client.TestAdminWebhookWithResponse(ctx, ep.Id, testutil.Bearer(tok))
	check(t, "test", tr.StatusCode(), tr.Body, 202)
	drain(t, s)
	g, _ := s.Client.GetAdminWebhookWithResponse(ctx, ep.Id, testutil.Bearer(tok))
	if g.JSON200 == nil || g.JSON200.Enabled || g.JSON200.DisabledAt == nil {
		t.Fatalf("after five days of failures: %s", g.Body)
	}
	// The organization's endpoint failed (its retry came due) and is
	// disabled too: the operator hears of theirs, the owner of hers.
	mails := disabledMails(t, s)
	if len(mails) != 2 || !strings.Contains(mails[opsEmail], rcv.srv.URL) || !strings.Contains(mails["alice@example.com"], rcv.srv.URL+"/org") {
		t.Fatalf("mails about the disabled endpoints: %v", mails)
	}
	if v := metricValue(t, s, `latch_webhook_endpoints_disabled_total`); v != 2 {
		t.Fatalf("disabled metric: %v", v)
	}
	before := len(rcv.all())
	emit(t, s, domain.OutUserCreated, nil)
	s.Clock.Advance(48 * time.Hour)
	drain(t, s)
	if len(rcv.all()) != before {
		t.Fatal("a disabled endpoint got a message")
	}
	tok = login(s, opsEmail, goodPassword).JSON200.AccessToken
	// Enabling it again ends the streak.
	on := true
	u, _ := s.Client.UpdateAdminWebhookWithResponse(ctx, ep.Id, client.UpdateAdminWebhookJSONRequestBody{Enabled: &on}, testutil.Bearer(tok))
	if u.JSON200 == nil || !u.JSON200.Enabled || u.JSON200.DisabledAt != nil {
		t.Fatalf("enable: %s", u.Body)
	}
}

// TestWebhookRotationSignsWithBothSecrets: for 24 hours after a rotation a
// message carries both signatures, so a receiver holding either secret
// accepts it; afterwards only the new one signs.
func TestWebhookRotationSignsWithBothSecrets(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, webhookOpts)
		rcv := newReceiver(t, nil)
		tok := operator(t, s)
		ep := createAdminWebhook(t, s, tok, rcv.srv.URL)
		rot, _ := s.Client.RotateAdminWebhookSecretWithResponse(context.Background(), ep.Id, testutil.Bearer(tok))
		check(t, "rotate", rot.StatusCode(), rot.Body, 200)
		newSecret := rot.JSON200.Secret
		if newSecret == ep.Secret || !rot.JSON200.PreviousValidUntil.Equal(s.Clock.Now().Add(24*time.Hour)) {
			t.Fatalf("rotation: %s", rot.Body)
		}
		emit(t, s, domain.OutUserCreated, nil)
		drain(t, s)
		r := rcv.all()[0]
		if n := len(strings.Fields(r.header.Get("webhook-signature"))); n != 2 {
			t.Fatalf("%d signatures during the overlap", n)
		}
		verifySignature(t, ep.Secret, r)
		verifySignature(t, newSecret, r)
		s.Clock.Advance(24*time.Hour + time.Second)
		emit(t, s, domain.OutUserCreated, nil)
		drain(t, s)
		r = rcv.all()[1]
		if n := len(strings.Fields(r.header.Get("webhook-signature"))); n != 1 {
			t.Fatalf("%d signatures after the overlap", n)
		}
		verifySignature(t, newSecret, r)
		if webhook.Verify(ep.Secret, r.header, r.body, s.Clock.Now(), time.Minute) == nil {
			t.Fatal("the old secret still verifies after the overlap")
		}
	})
}

// TestWebhookPrivateAddressesRefused: without LATCH_WEBHOOK_ALLOW_PRIVATE
// an endpoint must be https with no user info, a literal private, loopback
// or link-local address is refused at creation, and a name that resolves
// to loopback is refused at delivery (the receiver is never reached).
func TestWebhookPrivateAddressesRefused(t *testing.T) {
	s := testutil.Start(t, "sqlite", func(c *app.Config) { c.APIKeys.OperatorEmails = []string{opsEmail} })
	ctx := context.Background()
	tok := operator(t, s)
	for _, u := range []string{"http://hooks.example.com/x", "https://127.0.0.1/x", "https://169.254.169.254/latest/meta-data",
		"https://10.1.2.3/x", "https://[::1]/x", "https://100.64.0.1/", "https://user:pw@hooks.example.com/x", "hooks.example.com"} {
		res, _ := s.Client.CreateAdminWebhookWithResponse(ctx, client.CreateAdminWebhookJSONRequestBody{Url: u}, testutil.Bearer(tok))
		checkErr(t, u, res.StatusCode(), res.Body, 400, "invalid_request")
	}
	bad := []string{"user.created", "no.such"}
	res, _ := s.Client.CreateAdminWebhookWithResponse(ctx, client.CreateAdminWebhookJSONRequestBody{Url: "https://hooks.example.com/", EventTypes: &bad}, testutil.Bearer(tok))
	checkErr(t, "unknown event type", res.StatusCode(), res.Body, 400, "invalid_request")
	rcv := newReceiver(t, nil)
	port := rcv.srv.Listener.Addr().(interface{ String() string }).String()
	port = port[strings.LastIndex(port, ":")+1:]
	ep := createAdminWebhook(t, s, tok, "https://localhost:"+port+"/hook")
	emit(t, s, domain.OutUserCreated, nil)
	drain(t, s)
	if len(rcv.all()) != 0 {
		t.Fatal("a name resolving to loopback was reached")
	}
	ds := deliveries(t, s, tok, ep.Id)
	if len(ds) != 1 || ds[0].StatusCode != nil || !strings.Contains(ds[0].Error, "private") {
		t.Fatalf("deliveries: %+v", ds)
	}
}

// TestOrgWebhooks: an organization's owner registers endpoints that get
// only the organization's events; a member may neither read nor write
// them; an operator's endpoint gets every event; /admin/webhooks is for
// operators only.
func TestOrgWebhooks(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, webhookOpts)
		ctx := context.Background()
		alice := signup(t, s, "alice@example.com")
		s.MarkVerified(t, "alice@example.com")
		org := createOrg(t, s, alice.AccessToken, "Acme")
		carol := signup(t, s, "carol@example.com")
		other := createOrg(t, s, carol.AccessToken, "Other")
		signup(t, s, "bob@example.com")
		addMember(t, s, alice.AccessToken, org.Id, "bob@example.com", client.RoleMember)
		bob := login(s, "bob@example.com", goodPassword).JSON200.AccessToken

		mine, theirs, ops := newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil)
		res, _ := s.Client.CreateOrgWebhookWithResponse(ctx, org.Id, client.CreateOrgWebhookJSONRequestBody{Url: mine.srv.URL}, testutil.Bearer(alice.AccessToken))
		check(t, "owner creates", res.StatusCode(), res.Body, 201)
		if res.JSON201.OrgId == nil || *res.JSON201.OrgId != org.Id {
			t.Fatalf("org endpoint: %s", res.Body)
		}
		res2, _ := s.Client.CreateOrgWebhookWithResponse(ctx, other.Id, client.CreateOrgWebhookJSONRequestBody{Url: theirs.srv.URL}, testutil.Bearer(carol.AccessToken))
		check(t, "other owner creates", res2.StatusCode(), res2.Body, 201)
		opTok := operator(t, s)
		createAdminWebhook(t, s, opTok, ops.srv.URL)

		// A member is refused; another organization's owner sees nothing.
		rb, _ := s.Client.CreateOrgWebhookWithResponse(ctx, org.Id, client.CreateOrgWebhookJSONRequestBody{Url: mine.srv.URL}, testutil.Bearer(bob))
		checkErr(t, "member creates", rb.StatusCode(), rb.Body, 403, "insufficient_permissions")
		lb, _ := s.Client.ListOrgWebhooksWithResponse(ctx, org.Id, nil, testutil.Bearer(bob))
		checkErr(t, "member lists", lb.StatusCode(), lb.Body, 403, "insufficient_permissions")
		gc, _ := s.Client.GetOrgWebhookWithResponse(ctx, other.Id, res.JSON201.Id, testutil.Bearer(carol.AccessToken))
		checkErr(t, "another organization's endpoint", gc.StatusCode(), gc.Body, 404, "not_found")
		la, _ := s.Client.ListAdminWebhooksWithResponse(ctx, nil, testutil.Bearer(alice.AccessToken))
		checkErr(t, "a non-operator lists the operators' endpoints", la.StatusCode(), la.Body, 403, "insufficient_permissions")
		ll, _ := s.Client.ListOrgWebhooksWithResponse(ctx, org.Id, nil, testutil.Bearer(alice.AccessToken))
		check(t, "owner lists", ll.StatusCode(), ll.Body, 200)
		if len(ll.JSON200.Webhooks) != 1 {
			t.Fatalf("owner lists %d endpoints", len(ll.JSON200.Webhooks))
		}
		// An organization key with webhooks:write manages them too; one
		// without is refused.
		k := createOrgKey(t, s, testutil.Bearer(alice.AccessToken), org.Id, "webhooks:write", "webhooks:read")
		rk, _ := s.Client.CreateOrgWebhookWithResponse(ctx, org.Id, client.CreateOrgWebhookJSONRequestBody{Url: mine.srv.URL + "/k", EventTypes: &[]string{"api_key.created"}}, testutil.APIKey(k.Key))
		check(t, "organization key creates", rk.StatusCode(), rk.Body, 201)
		k2 := createOrgKey(t, s, testutil.Bearer(alice.AccessToken), org.Id, "keys:read")
		rk2, _ := s.Client.ListOrgWebhooksWithResponse(ctx, org.Id, nil, testutil.APIKey(k2.Key))
		checkErr(t, "key without the scope", rk2.StatusCode(), rk2.Body, 403, "insufficient_permissions")

		emit(t, s, domain.OutOrgMemberAdded, &org.Id)
		emit(t, s, domain.OutOrgMemberAdded, &other.Id)
		emit(t, s, domain.OutUserCreated, nil)
		drain(t, s)
		if n := len(mine.all()); n != 1 {
			t.Fatalf("the organization's endpoint got %d messages, want its 1", n)
		}
		if n := len(theirs.all()); n != 1 {
			t.Fatalf("the other organization's endpoint got %d messages, want its 1", n)
		}
		if n := len(ops.all()); n != 3 {
			t.Fatalf("the operator's endpoint got %d messages, want all 3", n)
		}
		d1, _ := s.Client.DeleteOrgWebhookWithResponse(ctx, org.Id, res.JSON201.Id, testutil.Bearer(bob))
		checkErr(t, "member deletes", d1.StatusCode(), d1.Body, 403, "insufficient_permissions")
		d2, _ := s.Client.DeleteOrgWebhookWithResponse(ctx, org.Id, res.JSON201.Id, testutil.Bearer(alice.AccessToken))
		check(t, "owner deletes", d2.StatusCode(), d2.Body, 204)
	})
}

// TestWebhookEachMessageOnceAcrossInstances: three instances on one
// PostgreSQL database drain the queue at once, and a healthy receiver gets
// each message exactly once.
func TestWebhookEachMessageOnceAcrossInstances(t *testing.T) {
	dbURL := testutil.DatabaseURL(t, "postgres")
	a := testutil.StartURL(t, dbURL, webhookOpts)
	b := testutil.StartURL(t, dbURL, webhookOpts)
	c := testutil.StartURL(t, dbURL, webhookOpts)
	rcv := newReceiver(t, nil)
	createAdminWebhook(t, a, operator(t, a), rcv.srv.URL)
	const n = 60
	for i := 0; i < n; i++ {
		emit(t, a, domain.OutUserCreated, nil)
	}
	var wg sync.WaitGroup
	for _, s := range []*testutil.Server{a, b, c} {
		for range 2 {
			wg.Add(1)
			go func(w *service.Webhooks) {
				defer wg.Done()
				if _, err := w.Drain(context.Background()); err != nil {
					t.Error(err)
				}
			}(s.App.Webhooks)
		}
	}
	wg.Wait()
	seen := map[string]int{}
	for _, r := range rcv.all() {
		seen[r.header.Get("webhook-id")]++
	}
	if len(seen) != n {
		t.Fatalf("%d distinct messages delivered, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("message %s delivered %d times", id, k)
		}
	}
}

// TestWebhookEndpointQuota: concurrent creations never take an owner past
// LATCH_QUOTA_WEBHOOK_ENDPOINTS; the operators and each organization have
// their own.
func TestWebhookEndpointQuota(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, webhookOpts, func(c *app.Config) { c.Quotas.WebhookEndpoints = 2 })
		ctx := context.Background()
		alice := signup(t, s, "alice@example.com")
		org := createOrg(t, s, alice.AccessToken, "Acme")
		create := func() int {
			r, err := s.Client.CreateOrgWebhookWithResponse(ctx, org.Id, client.CreateOrgWebhookJSONRequestBody{Url: "https://hooks.example.com/"}, testutil.Bearer(alice.AccessToken))
			if err != nil {
				t.Error(err)
				return 0
			}
			return r.StatusCode()
		}
		if got := concurrently(6, create); got[201] != 2 || got[409] != 4 {
			t.Fatalf("six concurrent creations under a quota of 2: %v", got)
		}
		r, _ := s.Client.CreateOrgWebhookWithResponse(ctx, org.Id, client.CreateOrgWebhookJSONRequestBody{Url: "https://hooks.example.com/"}, testutil.Bearer(alice.AccessToken))
		checkErr(t, "over the quota", r.StatusCode(), r.Body, 409, "quota_exceeded")
		tok := operator(t, s)
		createAdminWebhook(t, s, tok, "https://hooks.example.com/a")
		createAdminWebhook(t, s, tok, "https://hooks.example.com/b")
		ra, _ := s.Client.CreateAdminWebhookWithResponse(ctx, client.CreateAdminWebhookJSONRequestBody{Url: "https://hooks.example.com/c"}, testutil.Bearer(tok))
		checkErr(t, "operators over the quota", ra.StatusCode(), ra.Body, 409, "quota_exceeded")
	})
}

package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/latchauth/latch/client"
	"github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/testutil"
)

const opsEmail = "ops@example.com"

// adminScopes are every admin scope: the operator's key holds them all.
var adminScopes = []string{"admin:users:read", "admin:users:write", "admin:webhooks:read", "admin:webhooks:write", "admin:events:read"}

// withOperators makes opsEmail an operator, lets webhooks reach loopback
// and seals their secrets under a master key.
func withOperators(c *app.Config) {
	c.APIKeys.OperatorEmails = []string{opsEmail}
	c.Webhooks.AllowPrivate = true
	c.MasterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
}

// operatorAdmin signs the operator up, records the verification of their
// email (an autoconfirmed signup records none, and only a key created after
// the verification counts), creates a personal key with every admin scope
// and returns the Admin of a client that sends it.
func operatorAdmin(t *testing.T, l *latch) *client.Admin {
	t.Helper()
	ctx := context.Background()
	c := l.newClient(t)
	if _, err := c.SignUp(ctx, opsEmail, password); err != nil {
		t.Fatal(err)
	}
	l.MarkVerified(t, opsEmail)
	l.Clock.Advance(time.Second)
	k, err := c.CreateAPIKey(ctx, client.CreateAPIKeyRequest{Label: "ops", Scopes: adminScopes})
	if err != nil {
		t.Fatal(err)
	}
	a, err := client.NewAdmin(l.URL, k.Key, client.WithTransport(testutil.NewValidatingTransport(t, http.DefaultTransport)), client.WithClock(l.Clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func wantCode(t *testing.T, what string, err error, code client.Code) {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) || !errors.Is(err, code) {
		t.Fatalf("%s: got %v, want an *Error %s", what, err, code)
	}
}

func TestAdminUsers(t *testing.T) {
	l := start(t, withOperators)
	ctx := context.Background()
	a := operatorAdmin(t, l)

	users := l.newClient(t)
	var emails []string
	for range 3 {
		e := email()
		if _, err := users.SignUp(ctx, e, password); err != nil {
			t.Fatal(err)
		}
		emails = append(emails, e)
		l.Clock.Advance(time.Second)
	}

	// One user a page: the iterator follows next_cursor to the operator.
	limit := 1
	var seen []string
	for u, err := range a.IterUsers(ctx, client.UserFilter{Limit: &limit}) {
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, string(*u.Email))
	}
	if want := []string{emails[2], emails[1], emails[0], opsEmail}; len(seen) != 4 || seen[0] != want[0] || seen[3] != want[3] {
		t.Fatalf("IterUsers: %v, want %v", seen, want)
	}
	page, err := a.ListUsers(ctx, client.UserFilter{Email: &emails[0]}, "")
	if err != nil || len(page.Users) != 1 || page.NextCursor != nil {
		t.Fatalf("ListUsers by email: %+v %v", page, err)
	}
	id := page.Users[0].Id

	// A ban refuses the sign-in with user_banned; the unban lets it in.
	until := l.Clock.Now().Add(24 * time.Hour)
	u, err := a.BanUser(ctx, id, until, "fraud")
	if err != nil || !u.Banned || *u.BanReason != "fraud" {
		t.Fatalf("BanUser: %+v %v", u, err)
	}
	_, err = l.newClient(t).SignIn(ctx, emails[0], password)
	wantCode(t, "sign-in when banned", err, client.ErrUserBanned)
	if u, err = a.UnbanUser(ctx, id); err != nil || u.Banned || u.BannedUntil != nil {
		t.Fatalf("UnbanUser: %+v %v", u, err)
	}
	if _, err := l.newClient(t).SignIn(ctx, emails[0], password); err != nil {
		t.Fatalf("sign-in after the unban: %v", err)
	}

	// Metadata.
	app := client.AdminUserUpdate{AppMetadata: &latchapi.Metadata{"plan": "pro"}, UserMetadata: &latchapi.Metadata{"theme": "dark"}}
	if _, err := a.UpdateUser(ctx, id, app); err != nil {
		t.Fatal(err)
	}
	d, err := a.GetUser(ctx, id)
	if err != nil || (*d.User.AppMetadata)["plan"] != "pro" || (*d.User.UserMetadata)["theme"] != "dark" {
		t.Fatalf("GetUser: %+v %v", d, err)
	}
	if exp, err := a.ExportUser(ctx, id); err != nil || exp.User.Id != id {
		t.Fatalf("ExportUser: %v", err)
	}
	if err := a.EndSessions(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := a.RemoveFactors(ctx, id, nil); err != nil {
		t.Fatal(err)
	}
	if tok, err := a.Impersonate(ctx, id); err != nil || tok.AccessToken == "" {
		t.Fatalf("Impersonate: %v", err)
	}

	// Import with a bcrypt hash made here; the imported user signs in.
	hash, err := bcrypt.GenerateFromPassword([]byte("imported password 1"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h, imported := string(hash), email()
	res, err := a.ImportUsers(ctx, []client.ImportUser{{Email: latchapi.Email(imported), PasswordHash: &h}})
	if err != nil || res.Created != 1 || res.Results[0].Id == nil {
		t.Fatalf("ImportUsers: %+v %v", res, err)
	}
	if _, err := l.newClient(t).SignIn(ctx, imported, "imported password 1"); err != nil {
		t.Fatalf("sign-in of the imported user: %v", err)
	}
	n := 0
	for _, err := range a.ExportUsers(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 5 {
		t.Fatalf("ExportUsers: %d users, want 5", n)
	}

	if err := a.DeleteUser(ctx, *res.Results[0].Id, client.DeleteUserOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = a.GetUser(ctx, *res.Results[0].Id)
	wantCode(t, "GetUser of a deleted user", err, client.ErrNotFound)
}

func TestAdminRefusesNonOperators(t *testing.T) {
	l := start(t, withOperators)
	ctx := context.Background()
	c := l.newClient(t)
	signup(t, c)
	k, err := c.CreateAPIKey(ctx, client.CreateAPIKeyRequest{Label: "not ops", Scopes: adminScopes})
	if err != nil {
		t.Fatal(err)
	}
	a, err := client.NewAdmin(l.URL, k.Key)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.ListUsers(ctx, client.UserFilter{}, "")
	wantCode(t, "ListUsers", err, client.ErrInsufficientPermissions)
	for _, err := range a.IterEvents(ctx, client.EventFilter{}) {
		wantCode(t, "IterEvents", err, client.ErrInsufficientPermissions)
	}
}

func TestAdminWebhooksAndEvents(t *testing.T) {
	l := start(t, withOperators)
	ctx := context.Background()
	a := operatorAdmin(t, l)

	var got atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)

	wh, err := a.CreateWebhook(ctx, client.CreateWebhookRequest{Url: rcv.URL})
	if err != nil || wh.Secret == "" {
		t.Fatalf("CreateWebhook: %+v %v", wh, err)
	}
	list, err := a.ListWebhooks(ctx, "")
	if err != nil || len(list.Webhooks) != 1 || list.Webhooks[0].Id != wh.Id {
		t.Fatalf("ListWebhooks: %+v %v", list, err)
	}
	desc := "billing"
	if up, err := a.UpdateWebhook(ctx, wh.Id, client.UpdateWebhookRequest{Description: &desc}); err != nil || up.Description != desc {
		t.Fatalf("UpdateWebhook: %+v %v", up, err)
	}
	if g, err := a.GetWebhook(ctx, wh.Id); err != nil || g.Id != wh.Id {
		t.Fatalf("GetWebhook: %v", err)
	}
	if err := a.TestWebhook(ctx, wh.Id); err != nil {
		t.Fatal(err)
	}
	if _, err := l.App.Webhooks.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	dl, err := a.ListDeliveries(ctx, wh.Id, "")
	if err != nil || len(dl.Deliveries) == 0 || got.Load() == 0 {
		t.Fatalf("ListDeliveries: %+v %v (received %d)", dl, err, got.Load())
	}
	if err := a.Redeliver(ctx, wh.Id, dl.Deliveries[0].MessageId); err != nil {
		t.Fatal(err)
	}
	sec, err := a.RotateWebhookSecret(ctx, wh.Id)
	if err != nil || sec.Secret == "" || sec.Secret == wh.Secret {
		t.Fatalf("RotateWebhookSecret: %+v %v", sec, err)
	}

	// Events: a few users, read back two a page, then from a cursor.
	users := l.newClient(t)
	for range 3 {
		signup(t, users)
	}
	types := []client.OutboundEventType{"user.created"}
	var seqs []int64
	for e, err := range a.IterEvents(ctx, client.EventFilter{Types: types, Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		typ, _ := e.Discriminator()
		if typ != "user.created" {
			t.Fatalf("event type %q", typ)
		}
		u, err := e.AsUserCreatedEvent()
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, u.Seq)
	}
	if len(seqs) != 4 { // the operator and three users
		t.Fatalf("IterEvents: %v, want 4 user.created", seqs)
	}
	page, err := a.ListEvents(ctx, client.EventFilter{After: seqs[2], Types: types})
	if err != nil || len(page.Events) != 1 || page.NextCursor != seqs[3] {
		t.Fatalf("ListEvents after %d: %+v %v", seqs[2], page, err)
	}

	if err := a.DeleteWebhook(ctx, wh.Id); err != nil {
		t.Fatal(err)
	}
	_, err = a.GetWebhook(ctx, wh.Id)
	wantCode(t, "GetWebhook after delete", err, client.ErrNotFound)
}

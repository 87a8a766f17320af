package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/testutil"
)

func events(t *testing.T, s *testutil.Server, access string, limit int, before string) *client.ListEventsResponse {
	t.Helper()
	p := &client.ListEventsParams{}
	if limit > 0 {
		p.Limit = &limit
	}
	if before != "" {
		p.Before = &before
	}
	res, err := s.Client.ListEventsWithResponse(context.Background(), p, testutil.Bearer(access))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func allEvents(t *testing.T, s *testutil.Server, access string) []client.Event {
	t.Helper()
	res := events(t, s, access, 200, "")
	if res.StatusCode() != 200 {
		t.Fatalf("events: %d %s", res.StatusCode(), res.Body)
	}
	return res.JSON200.Events
}

func TestSecurityEvents(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		box := &mailbox{}
		ctx := context.Background()
		tick := func() { s.Clock.Advance(time.Millisecond) } // events of one instant have no order
		first := signup(t, s, "dave@example.com")
		vt := tokenIn(t, flush(t, s, box)[0])
		tick()
		login(s, "dave@example.com", "a wrong password")
		tick()
		verify(s, vt)
		tick()
		if r := change(s, first.AccessToken, goodPassword, newPassword); r.StatusCode() != 204 {
			t.Fatal(r.StatusCode())
		}
		tick()
		rt := resetMail(t, s, box, "dave@example.com")
		tick()
		if r := reset(s, rt, "the final passphrase"); r.StatusCode() != 204 {
			t.Fatal(r.StatusCode())
		}
		tick()
		now := login(s, "dave@example.com", "the final passphrase").JSON200
		other := signup(t, s, "other@example.com")

		evs := allEvents(t, s, now.AccessToken)
		var types []string
		for i, e := range evs {
			types = append(types, string(e.Type))
			if i > 0 && e.CreatedAt.After(evs[i-1].CreatedAt) {
				t.Fatal("not newest first")
			}
		}
		want := []string{"login_succeeded", "password_reset_completed", "password_reset_requested", "password_changed",
			"email_verified", "login_failed", "signup"}
		if strings.Join(types, ",") != strings.Join(want, ",") {
			t.Fatalf("events %v, want %v", types, want)
		}
		byType := map[string]client.Event{}
		for _, e := range evs {
			byType[string(e.Type)] = e
		}
		if e := byType["password_changed"]; e.SessionId == nil || *e.SessionId != first.SessionId || e.Ip == nil || *e.Ip != "127.0.0.1" ||
			e.UserAgent == nil || e.Detail == nil || (*e.Detail)["revoked_sessions"] != float64(0) {
			t.Fatalf("password_changed: %+v", e)
		}
		if e := byType["password_reset_completed"]; e.Detail == nil || (*e.Detail)["revoked_sessions"] != float64(1) {
			t.Fatalf("password_reset_completed: %+v", e)
		}
		// No secret in any event.
		b, _ := json.Marshal(evs)
		for _, secret := range []string{goodPassword, newPassword, "the final passphrase", "a wrong password", rt, vt, first.RefreshToken, first.AccessToken} {
			if strings.Contains(string(b), secret) {
				t.Fatal("an event holds a secret")
			}
		}
		// Only the caller's own events.
		mine := allEvents(t, s, other.AccessToken)
		if len(mine) != 1 || mine[0].Type != client.EventType(domain.EventSignup) {
			t.Fatalf("other user's events: %+v", mine)
		}
		// Without a session: 401.
		res, _ := s.Client.ListEventsWithResponse(ctx, nil)
		if res.StatusCode() != 401 {
			t.Fatalf("no token: %d", res.StatusCode())
		}
	})
}

func TestSecurityEventsPagination(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		tok := signup(t, s, "pages@example.com")
		for i := range 6 {
			login(s, "pages@example.com", "wrong password "+string(rune('a'+i)))
			if i%2 == 0 {
				s.Clock.Advance(time.Millisecond) // some share a time, some do not
			}
		}
		all := allEvents(t, s, tok.AccessToken)
		if len(all) != 7 {
			t.Fatalf("%d events", len(all))
		}
		var paged []client.Event
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("pagination does not end")
			}
			res := events(t, s, tok.AccessToken, 2, cursor)
			if res.StatusCode() != 200 {
				t.Fatalf("page: %d %s", res.StatusCode(), res.Body)
			}
			paged = append(paged, res.JSON200.Events...)
			if res.JSON200.NextCursor == nil {
				if len(res.JSON200.Events) > 2 {
					t.Fatal("page over the limit")
				}
				break
			}
			cursor = *res.JSON200.NextCursor
		}
		if len(paged) != len(all) {
			t.Fatalf("%d events paged, %d in one page", len(paged), len(all))
		}
		for i := range all {
			if paged[i].Id != all[i].Id {
				t.Fatalf("page order differs at %d", i)
			}
		}
		// A full last page has no next cursor.
		if res := events(t, s, tok.AccessToken, 7, ""); res.JSON200.NextCursor != nil {
			t.Fatal("next cursor past the last event")
		}
		// The default page size is 50.
		if res := events(t, s, tok.AccessToken, 0, ""); len(res.JSON200.Events) != 7 {
			t.Fatal("default limit")
		}
	})
}

func TestSecurityEventsMalformedCursor(t *testing.T) {
	s := testutil.Start(t, "sqlite")
	tok := signup(t, s, "cursor@example.com")
	for _, c := range []string{"abc", strings.Repeat("!", 32), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", strings.Repeat("A", 31) + "=", strings.Repeat("A", 65)} {
		res := events(t, s, tok.AccessToken, 10, c)
		if res.StatusCode() != http.StatusBadRequest || res.JSON400.Error != client.ErrorCodeInvalidRequest {
			t.Fatalf("cursor %q: %d %s", c, res.StatusCode(), res.Body)
		}
	}
	for _, l := range []string{"0", "201", "x"} {
		res, body := do(t, s, "GET", "/auth/events?limit="+l, "", nil, map[string]string{"Authorization": "Bearer " + tok.AccessToken})
		if res.StatusCode != 400 || errCode(t, body) != "invalid_request" {
			t.Fatalf("limit %s: %d %s", l, res.StatusCode, body)
		}
	}
}

func TestPruningByRetention(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		box := &mailbox{}
		signup(t, s, "old@example.com")
		flush(t, s, box)
		forgot(t, s, "old@example.com")
		flush(t, s, box)
		login(s, "old@example.com", "wrong password here")

		s.Clock.Advance(91 * 24 * time.Hour)
		n, err := s.App.Service.Pruner().Prune(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// signup, login_failed and password_reset_requested are past 90 days;
		// the first session and its token have ended; both mail tokens
		// expired; both mails were sent more than 7 days ago.
		want := map[string]int{domain.PruneEvents: 3, domain.PruneSessions: 1, domain.PruneRefreshTokens: 1,
			domain.PruneRecoveryTokens: 2, domain.PruneOutbox: 2}
		for k, v := range want {
			if n[k] != v {
				t.Errorf("pruned %d %s, want %d (all: %v)", n[k], k, v, n)
			}
		}
		tok := login(s, "old@example.com", goodPassword).JSON200
		evs := allEvents(t, s, tok.AccessToken)
		if len(evs) != 1 || evs[0].Type != client.EventType(domain.EventLoginSucceeded) {
			t.Fatalf("events after pruning: %+v", evs)
		}
		vars := s.App.Vars()
		if !strings.Contains(vars["latch_prune"].String(), `"security_events": 3`) || !strings.Contains(vars["latch_mail"].String(), `"sent": 2`) {
			t.Fatalf("metrics: %s %s", vars["latch_prune"], vars["latch_mail"])
		}
	})
}

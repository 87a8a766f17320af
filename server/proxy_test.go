package server_test

import (
	"context"
	"net/http"
	"net/netip"
	"testing"
	"time"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/ratelimit"
	"github.com/latchauth/latch/internal/testutil"
)

func forwardedFor(v string) client.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.Header.Set("X-Forwarded-For", v)
		return nil
	}
}

// sessionIP signs up through a request carrying X-Forwarded-For xff and
// returns the IP recorded on the new session.
func sessionIP(t *testing.T, s *testutil.Server, email, xff string) string {
	t.Helper()
	ctx := context.Background()
	res, err := s.Client.SignupWithResponse(ctx, client.SignupJSONRequestBody{Email: client.Email(email), Password: goodPassword}, forwardedFor(xff))
	if err != nil || res.StatusCode() != http.StatusCreated {
		t.Fatalf("signup: %v %d %s", err, res.StatusCode(), res.Body)
	}
	list, err := s.Client.ListSessionsWithResponse(ctx, nil, testutil.Bearer(signupSession(t, res).AccessToken))
	if err != nil || list.StatusCode() != 200 || len(list.JSON200.Sessions) != 1 || list.JSON200.Sessions[0].Ip == nil {
		t.Fatalf("sessions: %v %s", err, list.Body)
	}
	return *list.JSON200.Sessions[0].Ip
}

// TestForwardedForIsBelievedOnlyFromTrustedProxies: with no trusted proxy a
// client's X-Forwarded-For is ignored (before, LATCH_TRUST_PROXY believed
// its last hop from anyone); behind a trusted proxy the client is the first
// untrusted hop from the right, and an IPv6 client's full address is
// recorded on its session.
func TestForwardedForIsBelievedOnlyFromTrustedProxies(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		direct := testutil.Start(t, d)
		if ip := sessionIP(t, direct, "direct@example.com", "198.51.100.9"); ip != "127.0.0.1" {
			t.Fatalf("without trusted proxies the session IP is %q, want the peer 127.0.0.1", ip)
		}
		proxied := testutil.Start(t, d, func(c *app.Config) {
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
		})
		if ip := sessionIP(t, proxied, "spoof@example.com", "198.51.100.9, 203.0.113.7, 10.2.3.4"); ip != "203.0.113.7" {
			t.Fatalf("behind trusted proxies the session IP is %q, want 203.0.113.7", ip)
		}
		if ip := sessionIP(t, proxied, "v6@example.com", "2001:db8:1:2:aaaa:bbbb:cccc:dddd"); ip != "2001:db8:1:2:aaaa:bbbb:cccc:dddd" {
			t.Fatalf("IPv6 session IP %q, want the full address", ip)
		}
	})
}

// TestIPv6ClientsAreLimitedPerSlash64: a client that changes its address
// within its /64 for every attempt still meets the login limit per IP, and
// the next /64 does not.
func TestIPv6ClientsAreLimitedPerSlash64(t *testing.T) {
	s := testutil.Start(t, "sqlite", func(c *app.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		c.RateLimits = true
		c.Limits.LoginIP = ratelimit.Rule{Burst: 3, Per: time.Hour}
	})
	login := func(ip string) int {
		res, err := s.Client.LoginWithResponse(context.Background(),
			client.LoginJSONRequestBody{Email: "nobody@example.com", Password: goodPassword}, forwardedFor(ip))
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode()
	}
	for i, ip := range []string{"2001:db8:7:7::1", "2001:db8:7:7::2", "2001:db8:7:7:ffff:ffff:ffff:ffff"} {
		if code := login(ip); code != http.StatusUnauthorized {
			t.Fatalf("attempt %d from %s: %d, want 401", i, ip, code)
		}
	}
	if code := login("2001:db8:7:7:1234::9"); code != http.StatusTooManyRequests {
		t.Fatalf("a fourth address in the same /64: %d, want 429", code)
	}
	if code := login("2001:db8:7:8::1"); code != http.StatusUnauthorized {
		t.Fatalf("the next /64: %d, want 401", code)
	}
	if code := login("::ffff:192.0.2.1"); code != http.StatusUnauthorized {
		t.Fatalf("an IPv4 client: %d, want 401", code)
	}
}

package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/testutil"
)

// BenchmarkGetMe serves GET /auth/me through the whole handler (the
// middleware, routing, validation and authentication, the handler and its
// JSON) without a network: its allocations per request are what the
// handler adds to net/http's. The access log is on (the test logger, at
// debug). `make bench` measures the served rate.
func BenchmarkGetMe(b *testing.B) {
	s := testutil.Start(b, "sqlite")
	res, err := s.Client.SignupWithResponse(context.Background(), client.SignupJSONRequestBody{Email: "bench@example.com", Password: goodPassword})
	if err != nil || res.JSON201 == nil {
		b.Fatalf("signup: %v %s", err, res.Body)
	}
	v, err := res.JSON201.ValueByDiscriminator()
	tok, ok := v.(client.SignupSession)
	if err != nil || !ok {
		b.Fatalf("signup answered %T %v", v, err)
	}
	req := httptest.NewRequest(http.MethodGet, "/auth/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.RemoteAddr = "127.0.0.1:40000"
	h := s.App.Handler
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("GET /auth/me: %d %s", w.Code, w.Body)
		}
		s.Log.Reset()
	}
}

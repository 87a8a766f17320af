package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/latchauth/latch/api"
)

// The hand-written encoders write exactly what the generated Visit methods
// (encoding/json) write.
func TestFastJSONMatchesEncodingJSON(t *testing.T) {
	email := openapi_types.Email("ada@example.com")
	odd := openapi_types.Email(`"a<b>&c"@example.com`)
	ext := "auth0|64f1c2"
	org := uuid.New()
	meta := map[string]any{"plan": "pro", "n": 1.5}
	users := map[string]api.User{
		"plain":      {Id: uuid.New(), Email: &email, EmailVerified: true, CreatedAt: time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)},
		"no email":   {Id: uuid.New(), CreatedAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
		"escaped":    {Id: uuid.New(), Email: &odd, CreatedAt: time.Now()},
		"delegated":  {Id: uuid.New(), Email: &email, ExternalId: &ext, OrgId: &org, CreatedAt: time.Now().In(time.FixedZone("x", 3600))},
		"metadata":   {Id: uuid.New(), ExternalId: &ext, OrgId: &org, Metadata: &meta, CreatedAt: time.Now()},
		"odd year":   {Id: uuid.New(), CreatedAt: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"zero value": {},
	}
	for name, u := range users {
		t.Run(name, func(t *testing.T) {
			fast, ok := userBody(u)
			check(t, ok, meResponse{fast}.VisitGetMeResponse, api.GetMe200JSONResponse(u).VisitGetMeResponse)
			tr := api.TokenResponse{AccessToken: "eyJ.a-b_c.d", TokenType: api.TokenResponseTokenTypeBearer, ExpiresIn: 900,
				ExpiresAt: time.Now().UTC(), RefreshToken: "r-_x", SessionId: uuid.New(), User: u}
			fast, ok = tokensBody(200, tr)
			check(t, ok, refreshResponse{fast}.VisitRefreshResponse, api.Refresh200JSONResponse(tr).VisitRefreshResponse)
			check(t, ok, loginResponse{fast}.VisitLoginResponse, api.Login200JSONResponse(tr).VisitLoginResponse)
			fast, ok = tokensBody(201, tr)
			check(t, ok, signupResponse{fast}.VisitSignupResponse, api.Signup201JSONResponse(tr).VisitSignupResponse)
		})
	}
	ex := api.ExchangeResponse{AccessToken: "eyJ.x.y", TokenType: api.ExchangeResponseTokenTypeBearer, ExpiresIn: 300,
		ExpiresAt: time.Now(), Scope: "billing:read users:read"}
	fast, ok := exchangeBody(ex)
	check(t, ok, exchangeResponse{fast}.VisitExchangeTokenResponse, api.ExchangeToken200JSONResponse(ex).VisitExchangeTokenResponse)
	for name, u := range users {
		if _, ok := userBody(u); ok != (name == "plain" || name == "no email" || name == "delegated" || name == "zero value") {
			t.Errorf("%s: fast path taken = %v", name, ok)
		}
	}
}

// check compares the two encodings when the fast path took the value.
func check(t *testing.T, ok bool, fast, generated func(w http.ResponseWriter) error) {
	t.Helper()
	if !ok {
		return
	}
	a, b := httptest.NewRecorder(), httptest.NewRecorder()
	if err := fast(a); err != nil {
		t.Fatal(err)
	}
	if err := generated(b); err != nil {
		t.Fatal(err)
	}
	if a.Code != b.Code || a.Header().Get("Content-Type") != b.Header().Get("Content-Type") || !bytes.Equal(a.Body.Bytes(), b.Body.Bytes()) {
		t.Fatalf("fast:\n%d %q\n%s\ngenerated:\n%d %q\n%s", a.Code, a.Header(), a.Body, b.Code, b.Header(), b.Body)
	}
	if !json.Valid(a.Body.Bytes()) {
		t.Fatalf("invalid JSON %s", a.Body)
	}
}

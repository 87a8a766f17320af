package server

import (
	"net/http"
	"net/mail"
	"strconv"
	"time"

	"github.com/latchauth/latch/api"
)

// The hottest responses (the user, the token set, the exchanged token) are
// encoded by hand into one buffer instead of through encoding/json's
// reflection. The bytes are exactly what the generated Visit methods write:
// the same fields in the same order, the same escaping, a trailing newline
// (fastjson_test.go checks this against encoding/json). Anything unusual
// (metadata, a string that needs escaping, an address that net/mail would
// rewrite, a time outside years 0-9999) makes the caller use the generated
// response instead.

// jsonBody is a finished JSON response.
type jsonBody struct {
	status int
	body   []byte
}

func (j jsonBody) write(w http.ResponseWriter) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(j.status)
	_, err := w.Write(j.body)
	return err
}

type meResponse struct{ jsonBody }

func (r meResponse) VisitGetMeResponse(w http.ResponseWriter) error { return r.write(w) }

type signupResponse struct{ jsonBody }

func (r signupResponse) VisitSignupResponse(w http.ResponseWriter) error { return r.write(w) }

type loginResponse struct{ jsonBody }

func (r loginResponse) VisitLoginResponse(w http.ResponseWriter) error { return r.write(w) }

type refreshResponse struct{ jsonBody }

func (r refreshResponse) VisitRefreshResponse(w http.ResponseWriter) error { return r.write(w) }

type exchangeResponse struct{ jsonBody }

func (r exchangeResponse) VisitExchangeTokenResponse(w http.ResponseWriter) error { return r.write(w) }

var (
	_ api.GetMeResponseObject         = meResponse{}
	_ api.SignupResponseObject        = signupResponse{}
	_ api.LoginResponseObject         = loginResponse{}
	_ api.RefreshResponseObject       = refreshResponse{}
	_ api.ExchangeTokenResponseObject = exchangeResponse{}
)

// userBody encodes u, reporting false when the fast path cannot promise
// encoding/json's bytes; the caller then uses the generated response.
func userBody(u api.User) (jsonBody, bool) {
	e := enc{b: make([]byte, 0, 256), ok: true}
	e.user(&u)
	e.b = append(e.b, '\n')
	return jsonBody{http.StatusOK, e.b}, e.ok
}

// tokensBody encodes t like userBody.
func tokensBody(status int, t api.TokenResponse) (jsonBody, bool) {
	e := enc{b: make([]byte, 0, 1024), ok: true}
	e.raw(`{"access_token":`)
	e.str(t.AccessToken)
	e.raw(`,"expires_at":`)
	e.time(t.ExpiresAt)
	e.raw(`,"expires_in":`)
	e.b = strconv.AppendInt(e.b, int64(t.ExpiresIn), 10)
	e.raw(`,"refresh_token":`)
	e.str(t.RefreshToken)
	e.raw(`,"session_id":"`)
	e.raw(t.SessionId.String())
	e.raw(`","token_type":`)
	e.str(string(t.TokenType))
	e.raw(`,"user":`)
	e.user(&t.User)
	e.raw("}\n")
	return jsonBody{status, e.b}, e.ok
}

// exchangeBody encodes x like userBody.
func exchangeBody(x api.ExchangeResponse) (jsonBody, bool) {
	e := enc{b: make([]byte, 0, 768), ok: true}
	e.raw(`{"access_token":`)
	e.str(x.AccessToken)
	e.raw(`,"expires_at":`)
	e.time(x.ExpiresAt)
	e.raw(`,"expires_in":`)
	e.b = strconv.AppendInt(e.b, int64(x.ExpiresIn), 10)
	e.raw(`,"scope":`)
	e.str(x.Scope)
	e.raw(`,"token_type":`)
	e.str(string(x.TokenType))
	e.raw("}\n")
	return jsonBody{http.StatusOK, e.b}, e.ok
}

// enc appends JSON; ok turns false at the first value it cannot encode
// exactly as encoding/json would.
type enc struct {
	b  []byte
	ok bool
}

func (e *enc) raw(s string) { e.b = append(e.b, s...) }

func (e *enc) user(u *api.User) {
	if u.Metadata != nil {
		e.ok = false
		return
	}
	e.raw(`{"created_at":`)
	e.time(u.CreatedAt)
	e.raw(`,"email":`)
	if u.Email != nil {
		e.email(string(*u.Email))
	} else {
		e.raw(`null`)
	}
	e.raw(`,"email_verified":`)
	e.b = strconv.AppendBool(e.b, u.EmailVerified)
	if u.ExternalId != nil {
		e.raw(`,"external_id":`)
		e.str(*u.ExternalId)
	}
	e.raw(`,"id":"`)
	e.raw(u.Id.String())
	e.raw(`"`)
	if u.OrgId != nil {
		e.raw(`,"org_id":"`)
		e.raw(u.OrgId.String())
		e.raw(`"`)
	}
	e.raw("}")
}

// str appends s when every byte is printable ASCII that encoding/json
// (with its HTML escaping) leaves as is.
func (e *enc) str(s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			e.ok = false
			return
		}
	}
	e.b = append(e.b, '"')
	e.b = append(e.b, s...)
	e.b = append(e.b, '"')
}

// email appends an address as openapi_types.Email.MarshalJSON does, which
// writes the address that net/mail parses out of it: the same string for
// every address Latch stores (they are checked that way on the way in).
func (e *enc) email(s string) {
	if a, err := mail.ParseAddress(s); err != nil || a.Address != s {
		e.ok = false
		return
	}
	e.str(s)
}

// time appends t as time.Time.MarshalJSON does.
func (e *enc) time(t time.Time) {
	if y := t.Year(); y < 0 || y > 9999 {
		e.ok = false
		return
	}
	e.b = append(e.b, '"')
	e.b = t.AppendFormat(e.b, time.RFC3339Nano)
	e.b = append(e.b, '"')
}

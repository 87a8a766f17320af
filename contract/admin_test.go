package contract

import (
	"net/http"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// adminEmail is the contract run's operator.
const adminEmail = "ops@example.com"

// importFlow exercises the operators' user import, export and impersonation
// as an operator, and once as the imported user, who is not one.
func importFlow(t *testing.T, l *latchd, f *fixture, op func(string)) {
	t.Helper()
	cred := map[string]any{"email": adminEmail, "password": "correct horse battery staple"}
	l.json(t, "POST", "/auth/signup", cred, nil, 201)
	// An autoconfirmed address records no verification time, which operator
	// power needs; set one as following the verification link would.
	verifiedAt := time.Now().Add(-time.Second).UTC().Format("2006-01-02 15:04:05.000000+00:00")
	if _, err := l.app.Store.DB().Exec(`UPDATE users SET email_verified_at = $1 WHERE email = $2`, verifiedAt, adminEmail); err != nil {
		t.Fatal(err)
	}
	ops := bearer(l.json(t, "POST", "/auth/login", cred, nil, 200)["access_token"].(string))
	hash, err := bcrypt.GenerateFromPassword([]byte("imported password 1"), 4)
	if err != nil {
		t.Fatal(err)
	}
	im := l.json(t, "POST", "/admin/users/import", map[string]any{"users": []map[string]any{
		{"email": "imported@example.com", "email_verified": true, "password_hash": string(hash), "external_id": "legacy|1", "created_at": "2024-03-01T12:00:00Z"},
		{"email": "flow@example.com"},
	}}, ops, 200)
	op("importUsers")
	id := im["results"].([]any)[0].(map[string]any)["id"].(string)
	imported := l.json(t, "POST", "/auth/login", map[string]any{"email": "imported@example.com", "password": "imported password 1"}, nil, 200)
	l.json(t, "POST", "/admin/users/import", map[string]any{"users": []map[string]any{{"email": "x@example.com"}}}, bearer(imported["access_token"].(string)), 403)
	l.json(t, "GET", "/admin/users/export?limit=2", nil, ops, 200)
	op("exportUsers")
	imp := l.json(t, "POST", "/admin/users/"+id+"/impersonate", nil, ops, 200)
	op("impersonateUser")
	// The impersonation token reads: its session lists its operator.
	l.json(t, "GET", "/sessions", nil, bearer(imp["access_token"].(string)), 200)
	l.json(t, "POST", "/auth/password/change", map[string]any{"current_password": "imported password 1", "new_password": "another password 2"},
		bearer(imp["access_token"].(string)), 403)
	l.json(t, "POST", "/admin/users/"+id+"/impersonate", nil, http.Header{"X-API-Key": {f.apiKey}}, 403)
}

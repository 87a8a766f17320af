package contract

import (
	"strings"
	"testing"
)

// recoveryFlow exercises the recovery and events operations for
// extendedFlow, on a user of its own so that the flow's session and
// password stay as they are. The tokens that a mail would bring are not at
// hand here, so reset and verify get well-formed unknown tokens and answer
// 400 invalid_token (as does the email sign-in's verification);
// server/recovery_test.go, server/verification_test.go and
// server/otp_test.go cover their success through real mails.
func recoveryFlow(t *testing.T, l *latchd, op func(string)) {
	t.Helper()
	cred := map[string]any{"email": "recovery-flow@example.com", "password": "correct horse battery staple"}
	su := l.json(t, "POST", "/auth/signup", cred, nil, 201)
	access := su["access_token"].(string)
	l.json(t, "POST", "/auth/password/forgot", map[string]any{"email": "recovery-flow@example.com"}, nil, 202)
	op("forgotPassword")
	unknown := strings.Repeat("A", 43)
	l.json(t, "POST", "/auth/password/reset", map[string]any{"token": unknown, "password": "a brand new passphrase"}, nil, 400)
	op("resetPassword")
	l.json(t, "POST", "/auth/verify", map[string]any{"token": unknown}, nil, 400)
	op("verifyEmail")
	// Email sign-in: the mail's code and link are not at hand either;
	// server/otp_test.go covers their success.
	l.json(t, "POST", "/auth/otp", map[string]any{"email": "recovery-flow@example.com"}, nil, 202)
	op("signInWithOtp")
	l.json(t, "POST", "/auth/otp/verify", map[string]any{"token": unknown}, nil, 400)
	op("verifyOtp")
	l.json(t, "POST", "/auth/verify/resend", nil, bearer(access), 202)
	op("resendVerification")
	l.json(t, "POST", "/auth/password/change", map[string]any{"current_password": cred["password"], "new_password": "a brand new passphrase"}, bearer(access), 204)
	op("changePassword")
	page := l.json(t, "GET", "/auth/events?limit=2", nil, bearer(access), 200)
	if evs, _ := page["events"].([]any); len(evs) != 2 || page["next_cursor"] == nil {
		t.Fatalf("events page: %v", page)
	}
	l.json(t, "GET", "/auth/events?limit=2&before="+page["next_cursor"].(string), nil, bearer(access), 200)
	op("listEvents")
}

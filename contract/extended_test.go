package contract

import (
	"net/http"
	"net/url"
	"testing"
)

// extendedFlow exercises the operations of API keys, organizations, token
// exchange, delegated sessions, the operator lookup, recovery and events.
// It leaves a personal key with every built-in scope but users:read, and an
// organization, in the fixture for the malformed phase.
func extendedFlow(t *testing.T, l *latchd, f *fixture, op func(string)) {
	t.Helper()
	auth := bearer(f.access)
	scopes := []string{"token:exchange", "sessions:read", "sessions:write", "keys:read", "keys:write", "users:read", "billing:read"}
	k := l.json(t, "POST", "/api-keys", map[string]any{"label": "contract", "scopes": scopes, "expires_at": "2099-01-01T00:00:00Z"}, auth, 201)
	op("createAPIKey")
	f.apiKey, f.keyID = k["key"].(string), k["id"].(string)
	l.json(t, "GET", "/api-keys", nil, auth, 200)
	op("listAPIKeys")
	l.json(t, "GET", "/api-keys/"+f.keyID, nil, http.Header{"X-API-Key": {f.apiKey}}, 200)
	op("getAPIKey")
	spare := l.json(t, "POST", "/api-keys", map[string]any{"label": "spare", "scopes": []string{"keys:read"}}, auth, 201)
	rolled := l.json(t, "POST", "/api-keys/"+spare["id"].(string)+"/roll", map[string]any{"overlap_seconds": 60}, auth, 201)
	op("rollAPIKey")
	l.json(t, "DELETE", "/api-keys/"+rolled["id"].(string), nil, auth, 204)
	op("revokeAPIKey")
	l.json(t, "POST", "/auth/token", map[string]any{"scopes": []string{"billing:read"}, "expires_in": 300}, http.Header{"X-API-Key": {f.apiKey}}, 200)
	op("exchangeToken")
	l.json(t, "GET", "/userinfo", nil, auth, 200)
	op("getUserInfo")
	// Introspection needs tokens:introspect; this key lacks it: the
	// declared 403. Revocation of an unknown token is 200, as RFC 7009 says.
	form := func(path, body string, want int) {
		t.Helper()
		res, out := l.send(t, call{method: "POST", path: path, contentType: "application/x-www-form-urlencoded",
			body: []byte(body), header: http.Header{"X-API-Key": {f.apiKey}}})
		if res.StatusCode != want {
			t.Fatalf("POST %s -> %d, want %d: %s", path, res.StatusCode, want, out)
		}
	}
	form("/oauth/introspect", "token=not-a-token", 403)
	op("introspectToken")
	form("/oauth/revoke", "token=not-a-token", 200)
	op("revokeToken")
	l.json(t, "GET", "/auth/me", nil, http.Header{"X-API-Key": {f.apiKey}}, 200)

	org := l.json(t, "POST", "/organizations", map[string]any{"name": "Contract Inc"}, auth, 201)
	op("createOrganization")
	f.orgID = org["id"].(string)
	base := "/organizations/" + f.orgID
	l.json(t, "GET", "/organizations", nil, auth, 200)
	op("listOrganizations")
	l.json(t, "GET", base, nil, auth, 200)
	op("getOrganization")
	l.json(t, "PATCH", base, map[string]any{"name": "Contract Corp"}, auth, 200)
	// An owner without a second factor cannot require one of others.
	l.json(t, "PATCH", base, map[string]any{"require_mfa": true}, auth, 403)
	op("updateOrganization")
	mate := l.json(t, "POST", "/auth/signup", map[string]any{"email": "mate@example.com", "password": "another fine passphrase"}, nil, 201)
	mateID := mate["user"].(map[string]any)["id"].(string)
	// Membership is by invitation only; the accepting side needs the mailed
	// token, which server tests follow. Here: the contract of each step.
	l.json(t, "POST", base+"/invitations", map[string]any{"email": "mate@example.com", "role": "member"}, auth, 202)
	op("inviteMember")
	inv := l.json(t, "GET", base+"/invitations", nil, auth, 200)
	op("listInvitations")
	invID := inv["invitations"].([]any)[0].(map[string]any)["id"].(string)
	l.json(t, "POST", "/invitations/accept", map[string]any{"token": "not-a-real-invitation-token"}, auth, 400)
	op("acceptInvitation")
	l.json(t, "DELETE", base+"/invitations/"+invID, nil, auth, 204)
	op("revokeInvitation")
	l.json(t, "GET", base+"/members", nil, auth, 200)
	op("listMembers")
	l.json(t, "PATCH", base+"/members/"+mateID, map[string]any{"role": "admin"}, auth, 404)
	op("updateMember")
	l.json(t, "DELETE", base+"/members/"+mateID, nil, auth, 404)
	op("removeMember")
	l.json(t, "PUT", base+"/audiences", map[string]any{"audiences": []string{"https://api.contract.test"}}, auth, 200)
	op("setAudiences")
	l.json(t, "GET", base+"/audiences", nil, auth, 200)
	op("getAudiences")
	l.json(t, "POST", base+"/api-keys/revoke", map[string]any{"created_by": mateID}, auth, 200)
	op("revokeOrgAPIKeysByCreator")
	ok := l.json(t, "POST", base+"/api-keys", map[string]any{"label": "backend", "scopes": []string{"token:exchange", "sessions:write", "sessions:read", "keys:read"}}, auth, 201)
	op("createOrgAPIKey")
	orgKey := http.Header{"X-API-Key": {ok["key"].(string)}}
	l.json(t, "GET", base+"/api-keys", nil, auth, 200)
	op("listOrgAPIKeys")
	l.json(t, "GET", base+"/api-keys/"+ok["id"].(string), nil, orgKey, 200)
	op("getOrgAPIKey")
	spareOrg := l.json(t, "POST", base+"/api-keys", map[string]any{"label": "spare", "scopes": []string{"keys:read"}}, auth, 201)
	rolledOrg := l.json(t, "POST", base+"/api-keys/"+spareOrg["id"].(string)+"/roll", map[string]any{}, auth, 201)
	op("rollOrgAPIKey")
	l.json(t, "DELETE", base+"/api-keys/"+rolledOrg["id"].(string), nil, auth, 204)
	op("revokeOrgAPIKey")
	ds := l.json(t, "POST", "/sessions", map[string]any{"external_id": "auth0|contract", "email": "ext@example.com", "metadata": map[string]any{"plan": "pro"}}, orgKey, 201)
	op("createDelegatedSession")
	l.json(t, "GET", base+"/sessions?external_id="+url.QueryEscape("auth0|contract"), nil, orgKey, 200)
	op("listOrgSessions")
	l.json(t, "POST", "/sessions/"+ds["session_id"].(string)+"/renew", nil, orgKey, 200)
	l.json(t, "DELETE", base+"/sessions/"+ds["session_id"].(string), nil, orgKey, 204)
	op("revokeOrgSession")
	// The flow's user is an operator, and the key was made after the
	// verification: the lookup answers.
	l.json(t, "GET", "/users?email="+url.QueryEscape("flow@example.com"), nil, http.Header{"X-API-Key": {f.apiKey}}, 200)
	op("lookupUser")
	webhookFlow(t, l, base, auth, op)
	ssoFlow(t, l, l.dns, base, auth, op)

	recoveryFlow(t, l, op)
	mfaFlow(t, l, f, op)
	adminFlow(t, l, f, op)
}

// adminFlow exercises the admin API as the flow's operator (an aal2
// session after mfaFlow), and PATCH /auth/me.
func adminFlow(t *testing.T, l *latchd, f *fixture, op func(string)) {
	t.Helper()
	auth := bearer(f.access)
	l.json(t, "PATCH", "/auth/me", map[string]any{"user_metadata": map[string]any{"theme": "dark"}}, auth, 200)
	op("updateMe")
	l.json(t, "PATCH", "/admin/users/"+f.userID, map[string]any{"app_metadata": map[string]any{"plan": "pro"}}, auth, 200)
	l.json(t, "GET", "/auth/me", nil, auth, 200)
	target := l.json(t, "POST", "/auth/signup", map[string]any{"email": "admin-target@example.com", "password": "correct horse battery staple"}, nil, 201)
	id := target["user"].(map[string]any)["id"].(string)
	l.json(t, "PATCH", "/admin/users/"+id, map[string]any{"banned_until": "2099-01-01T00:00:00Z", "ban_reason": "contract",
		"user_metadata": map[string]any{"a": 1}, "app_metadata": map[string]any{"b": 2}}, auth, 200)
	op("updateAdminUser")
	list := l.json(t, "GET", "/admin/users?limit=1", nil, auth, 200)
	l.json(t, "GET", "/admin/users?limit=50&cursor="+url.QueryEscape(list["next_cursor"].(string)), nil, auth, 200)
	page := l.json(t, "GET", "/admin/users?external_id="+url.QueryEscape("auth0|contract"), nil, auth, 200)
	op("listAdminUsers")
	l.json(t, "GET", "/admin/users/"+f.userID, nil, auth, 200)
	op("getAdminUser")
	delegated := page["users"].([]any)[0].(map[string]any)["id"].(string)
	l.json(t, "GET", "/admin/users/"+delegated+"/export", nil, auth, 200)
	l.json(t, "GET", "/admin/users/"+f.userID+"/export", nil, auth, 200)
	op("exportAdminUser")
	l.json(t, "DELETE", "/admin/users/"+id+"/sessions", nil, auth, 204)
	op("revokeAdminUserSessions")
	l.json(t, "DELETE", "/admin/users/"+id+"/factors", nil, auth, 204)
	op("deleteAdminUserFactors")
	l.json(t, "DELETE", "/admin/users/"+id+"/factors/"+id, nil, auth, 404)
	op("deleteAdminUserFactor")
	l.json(t, "DELETE", "/admin/users/"+id, nil, auth, 204)
	op("deleteAdminUser")
	victim := l.json(t, "POST", "/auth/signup", map[string]any{"email": "admin-victim@example.com", "password": "correct horse battery staple"}, nil, 201)
	f.victimID = victim["user"].(map[string]any)["id"].(string)
	// The events feed: every event the flow's changes emitted so far, each
	// validated against its type's schema with the rest of the response.
	after := ""
	for pages := 0; ; pages++ {
		feed := l.json(t, "GET", "/events?limit=100"+after, nil, auth, 200)
		if more, _ := feed["has_more"].(bool); !more || pages > 50 {
			break
		}
		after = "&after=" + url.QueryEscape(feed["next_cursor"].(string))
	}
	l.json(t, "GET", "/events?limit=5&types=user.created,user.banned", nil, auth, 200)
	op("listOutboundEvents")
	l.json(t, "GET", "/organizations/"+f.orgID+"/events?limit=100", nil, auth, 200)
	op("listOrgOutboundEvents")
}

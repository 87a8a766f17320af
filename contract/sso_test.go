package contract

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/latchauth/latch/internal/testutil"
)

// ssoFlow exercises enterprise SSO's operations: a domain verified through
// the loopback DNS server, a connection whose issuer does not answer
// discovery (422: the contract run has no OpenID provider; the sign-in
// itself runs against oidc-provider in server/sso_test.go), /auth/sso
// without a connection (404), and the removals.
func ssoFlow(t *testing.T, l *latchd, dns *testutil.DNS, base string, auth http.Header, op func(string)) {
	t.Helper()
	d := l.json(t, "POST", base+"/domains", map[string]any{"domain": "contract.example"}, auth, 201)
	op("createOrgDomain")
	id := d["id"].(string)
	v := d["verification"].(map[string]any)
	l.json(t, "GET", base+"/domains", nil, auth, 200)
	op("listOrgDomains")
	l.json(t, "POST", base+"/domains/"+id+"/verify", nil, auth, 422)
	dns.Set(v["record_name"].(string), v["record_value"].(string))
	l.json(t, "POST", base+"/domains/"+id+"/verify", nil, auth, 200)
	op("verifyOrgDomain")
	l.json(t, "PUT", base+"/sso", map[string]any{"issuer": "https://127.0.0.1:1", "client_id": "contract", "client_secret": "contract-secret"}, auth, 422)
	op("putOrgSSO")
	l.json(t, "GET", base+"/sso", nil, auth, 404)
	op("getOrgSSO")
	l.json(t, "DELETE", base+"/sso", nil, auth, 404)
	op("deleteOrgSSO")
	q := url.Values{"email": {"ada@contract.example"}, "redirect_to": {appRedirect}, "code_challenge": {contractChallenge()}}
	l.json(t, "GET", "/auth/sso?"+q.Encode(), nil, nil, 404)
	op("startSSO")
	l.json(t, "DELETE", base+"/domains/"+id, nil, auth, 204)
	op("deleteOrgDomain")
}

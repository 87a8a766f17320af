package contract

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
)

// webhookFlow exercises the webhook operations: an organization's endpoint
// through its whole life against a receiver on loopback (the contract run
// sets LATCH_WEBHOOK_ALLOW_PRIVATE), and the operators' operations, which
// the flow's user (no operator) is refused as declared.
func webhookFlow(t *testing.T, l *latchd, base string, auth http.Header, op func(string)) {
	t.Helper()
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(rcv.Close)
	hooks := base + "/webhooks"
	ep := l.json(t, "POST", hooks, map[string]any{"url": rcv.URL + "/hook", "event_types": []string{"user.created"},
		"description": "contract", "enabled": true}, auth, 201)
	op("createOrgWebhook")
	id := ep["id"].(string)
	l.json(t, "GET", hooks, nil, auth, 200)
	op("listOrgWebhooks")
	l.json(t, "GET", hooks+"/"+id, nil, auth, 200)
	op("getOrgWebhook")
	l.json(t, "PATCH", hooks+"/"+id, map[string]any{"description": "contract v2", "event_types": []string{}}, auth, 200)
	op("updateOrgWebhook")
	l.json(t, "POST", hooks+"/"+id+"/secret/rotate", nil, auth, 200)
	op("rotateOrgWebhookSecret")
	l.json(t, "POST", hooks+"/"+id+"/test", nil, auth, 202)
	op("testOrgWebhook")
	// The running latchd's worker delivers the test message at once.
	var msgID string
	for deadline := time.Now().Add(20 * time.Second); msgID == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ds := l.json(t, "GET", hooks+"/"+id+"/deliveries", nil, auth, 200)
		if list := ds["deliveries"].([]any); len(list) > 0 {
			msgID = list[0].(map[string]any)["message_id"].(string)
		}
	}
	if msgID == "" {
		t.Fatal("the test message was not delivered")
	}
	op("listOrgWebhookDeliveries")
	l.json(t, "POST", hooks+"/"+id+"/deliveries/"+msgID+"/redeliver", nil, auth, 202)
	op("redeliverOrgWebhookMessage")
	l.json(t, "DELETE", hooks+"/"+id, nil, auth, 204)
	op("deleteOrgWebhook")

	// Not an operator: every operator webhook operation is refused.
	some, msg := uuid.NewString(), uuid.NewString()
	for _, c := range []struct {
		method, path, id string
		body             any
	}{
		{"GET", "/admin/webhooks", "listAdminWebhooks", nil},
		{"POST", "/admin/webhooks", "createAdminWebhook", map[string]any{"url": "https://hooks.example.com/latch"}},
		{"GET", "/admin/webhooks/" + some, "getAdminWebhook", nil},
		{"PATCH", "/admin/webhooks/" + some, "updateAdminWebhook", map[string]any{"enabled": false}},
		{"DELETE", "/admin/webhooks/" + some, "deleteAdminWebhook", nil},
		{"POST", "/admin/webhooks/" + some + "/secret/rotate", "rotateAdminWebhookSecret", nil},
		{"POST", "/admin/webhooks/" + some + "/test", "testAdminWebhook", nil},
		{"GET", "/admin/webhooks/" + some + "/deliveries", "listAdminWebhookDeliveries", nil},
		{"POST", "/admin/webhooks/" + some + "/deliveries/" + msg + "/redeliver", "redeliverAdminWebhookMessage", nil},
	} {
		l.json(t, c.method, c.path, c.body, auth, 403)
		op(c.id)
	}
}

package webhook

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestPublic(t *testing.T) {
	for addr, want := range map[string]bool{
		"93.184.215.14": true, "2606:4700::1111": true, "8.8.8.8": true,
		"127.0.0.1": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "fe80::1": false, "0.0.0.0": false, "::": false, "224.0.0.1": false,
		"ff02::1": false, "100.64.0.1": false, "100.127.255.254": false, "fc00::1": false, "::ffff:127.0.0.1": false,
		"::ffff:10.0.0.1": false,
	} {
		if got := Public(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Public(%s) = %v, want %v", addr, got, want)
		}
	}
}

// TestClientRefusesPrivateAddresses: the dialer refuses the address after
// resolution, before any packet is sent, so 10.x and the cloud metadata
// address are refused without a network.
func TestClientRefusesPrivateAddresses(t *testing.T) {
	c := NewClient(ClientConfig{Timeout: 2 * time.Second})
	for _, u := range []string{"http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:1/", "http://localhost:1/", "http://[::1]:1/"} {
		res, err := c.Get(u)
		if err == nil {
			res.Body.Close()
			t.Fatalf("%s: answered %d", u, res.StatusCode)
		}
		if !errors.Is(err, ErrPrivateAddress) {
			t.Fatalf("%s: %v, want ErrPrivateAddress", u, err)
		}
	}
}

func TestValidateURL(t *testing.T) {
	for u, ok := range map[string]bool{
		"https://hooks.example.com/x": true, "https://93.184.215.14/x": true,
		"http://hooks.example.com/x": false, "https://127.0.0.1/": false, "https://u:p@hooks.example.com/": false,
		"ftp://hooks.example.com/": false, "hooks.example.com": false, "https:///x": false, "https://[fe80::1]/": false,
		"https://hooks.example.com/#frag": false,
	} {
		if err := ValidateURL(u, false); (err == nil) != ok {
			t.Errorf("ValidateURL(%q) = %v, want ok %v", u, err, ok)
		}
	}
	if err := ValidateURL("http://127.0.0.1:8080/x", true); err != nil {
		t.Errorf("allow-private: %v", err)
	}
	if err := ValidateURL("https://u@127.0.0.1/", true); err == nil {
		t.Error("user info accepted with allow-private")
	}
}

// TestSignature checks the format against the Standard Webhooks
// specification's example (secret, id, timestamp, body and signature
// from the specification).
func TestSignature(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"test": 2432232314}`)
	at := time.Unix(1614265330, 0)
	sig, err := Sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", at, body)
	if err != nil {
		t.Fatal(err)
	}
	if sig != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("signature %s", sig)
	}
	other, _ := NewSecret()
	h, err := Headers([]string{other, secret}, "msg_p5jXN8AQM9LWM0D4loKWxJek", at, body)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(h.Get("webhook-signature"))); n != 2 {
		t.Fatalf("%d signatures", n)
	}
	for _, s := range []string{secret, other} {
		if err := Verify(s, h, body, at.Add(time.Minute), 5*time.Minute); err != nil {
			t.Fatalf("verify with one of the secrets: %v", err)
		}
	}
	if Verify(secret, h, append(body, ' '), at, time.Minute) == nil {
		t.Fatal("a changed body verified")
	}
	if Verify(secret, h, body, at.Add(time.Hour), time.Minute) == nil {
		t.Fatal("an old timestamp verified")
	}
	if Verify(secret, http.Header{}, body, at, time.Minute) == nil {
		t.Fatal("no headers verified")
	}
	if !strings.HasPrefix(other, SecretPrefix) || len(other) != len(SecretPrefix)+44 {
		t.Fatalf("new secret %q", other)
	}
}

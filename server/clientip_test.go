package server

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestClientIP(t *testing.T) {
	proxies, err := ParseTrustedProxies("10.0.0.0/8, 192.0.2.1, 2001:db8:ffff::/48")
	if err != nil {
		t.Fatal(err)
	}
	type req struct {
		peer string
		xff  []string // one entry per X-Forwarded-For header line
	}
	for name, c := range map[string]struct {
		trusted []netip.Prefix
		req     req
		want    string
	}{
		"no proxies: the peer, whatever the header says": {nil, req{"203.0.113.5:4000", []string{"198.51.100.1"}}, "203.0.113.5"},
		"untrusted peer: header ignored":                 {proxies, req{"203.0.113.5:4000", []string{"198.51.100.1"}}, "203.0.113.5"},
		"trusted peer, no header: the peer":              {proxies, req{"10.1.2.3:4000", nil}, "10.1.2.3"},
		"trusted peer: the hop it appended":              {proxies, req{"10.1.2.3:4000", []string{"198.51.100.1"}}, "198.51.100.1"},
		// A client cannot choose its address by sending a header: the
		// proxy appends the real one, and the walk stops there.
		"spoofed entries left of the real client are ignored": {proxies, req{"10.1.2.3:4000", []string{"1.1.1.1, 8.8.8.8, 198.51.100.1"}}, "198.51.100.1"},
		"chain of trusted proxies is skipped":                 {proxies, req{"10.1.2.3:4000", []string{"1.1.1.1, 198.51.100.1, 192.0.2.1, 10.9.9.9"}}, "198.51.100.1"},
		"several header lines read as one list":               {proxies, req{"10.1.2.3:4000", []string{"1.1.1.1, 198.51.100.1", "192.0.2.1"}}, "198.51.100.1"},
		"malformed entry stops at the last trusted hop":       {proxies, req{"10.1.2.3:4000", []string{"1.1.1.1, bogus, 192.0.2.1"}}, "192.0.2.1"},
		"malformed rightmost entry: the peer":                 {proxies, req{"10.1.2.3:4000", []string{"1.1.1.1, unknown"}}, "10.1.2.3"},
		"empty entry is malformed":                            {proxies, req{"10.1.2.3:4000", []string{"1.1.1.1,,"}}, "10.1.2.3"},
		"every hop trusted: the leftmost":                     {proxies, req{"10.1.2.3:4000", []string{"192.0.2.1, 10.0.0.7"}}, "192.0.2.1"},
		"address with port":                                   {proxies, req{"10.1.2.3:4000", []string{"198.51.100.1:5555"}}, "198.51.100.1"},
		"IPv6 with port":                                      {proxies, req{"10.1.2.3:4000", []string{"[2001:db8::7]:5555"}}, "2001:db8::7"},
		"IPv6 client, full address kept":                      {proxies, req{"[2001:db8:ffff:1::2]:4000", []string{"2001:db8:1:2:3:4:5:6"}}, "2001:db8:1:2:3:4:5:6"},
		"IPv4-mapped peer is trusted as IPv4":                 {proxies, req{"[::ffff:10.1.2.3]:4000", []string{"198.51.100.1"}}, "198.51.100.1"},
		"IPv4-mapped hop is IPv4 and trusted as such":         {proxies, req{"10.1.2.3:4000", []string{"198.51.100.1, ::ffff:192.0.2.1"}}, "198.51.100.1"},
		"IPv4-mapped client is returned as IPv4":              {proxies, req{"10.1.2.3:4000", []string{"::ffff:198.51.100.1"}}, "198.51.100.1"},
		"IPv4-mapped peer without proxies":                    {nil, req{"[::ffff:203.0.113.5]:4000", nil}, "203.0.113.5"},
	} {
		t.Run(name, func(t *testing.T) {
			h := &handler{cfg: Config{TrustedProxies: c.trusted}}
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.req.peer
			for _, v := range c.req.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := h.clientIP(r); got != c.want {
				t.Fatalf("clientIP = %q, want %q", got, c.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies(" 10.0.0.0/8,192.0.2.1 , ,2001:db8::1, ::ffff:172.16.0.0/108, 10.1.2.3/8")
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, p := range got {
		s = append(s, p.String())
	}
	if want := "10.0.0.0/8 192.0.2.1/32 2001:db8::1/128 172.16.0.0/12 10.0.0.0/8"; strings.Join(s, " ") != want {
		t.Fatalf("ParseTrustedProxies = %v, want %s", s, want)
	}
	for _, bad := range []string{"bogus", "10.0.0.0/33", "fe80::1%eth0", "::ffff:10.0.0.0/80", "10.0.0.1-10.0.0.9"} {
		if _, err := ParseTrustedProxies(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseTrustedProxies(%q): %v", bad, err)
		}
	}
}

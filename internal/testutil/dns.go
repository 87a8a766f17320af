package testutil

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/latchauth/latch/internal/app"
)

// DNS is a real DNS server on a loopback UDP port that answers the TXT
// records a test sets (NXDOMAIN for any other name), for organizations'
// domain verification through LATCH_DNS_RESOLVER.
type DNS struct {
	Addr string
	srv  *dns.Server
	mu   sync.Mutex
	txt  map[string][]string
}

// StartDNS starts a DNS server that stops with the test.
func StartDNS(t testing.TB) *DNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &DNS{Addr: pc.LocalAddr().String(), txt: map[string][]string{}}
	started := make(chan struct{})
	d.srv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(d.serve), NotifyStartedFunc: func() { close(started) }}
	go func() { _ = d.srv.ActivateAndServe() }()
	<-started
	t.Cleanup(d.Stop)
	return d
}

// Option points Latch's TXT lookups at the server.
func (d *DNS) Option(c *app.Config) { c.DNSResolver = d.Addr }

// Set makes name answer the TXT values (none: the name is gone).
func (d *DNS) Set(name string, values ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(values) == 0 {
		delete(d.txt, dns.Fqdn(strings.ToLower(name)))
		return
	}
	d.txt[dns.Fqdn(strings.ToLower(name))] = values
}

// Stop shuts the server down: its port then refuses queries.
func (d *DNS) Stop() { _ = d.srv.Shutdown() }

func (d *DNS) serve(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	if len(r.Question) == 1 {
		q := r.Question[0]
		d.mu.Lock()
		values, ok := d.txt[strings.ToLower(q.Name)]
		d.mu.Unlock()
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeTXT:
			for _, v := range values {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{v}})
			}
		}
	}
	_ = w.WriteMsg(m)
}

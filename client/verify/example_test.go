package verify_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/latchauth/latch/client/verify"
)

// A resource server accepts Latch access tokens: any valid token for
// /me, and tokens exchanged with the billing:read scope for /invoices.
func ExampleVerifier_RequireScopes() {
	v, err := verify.New(context.Background(), verify.Config{
		JWKSURL:  "https://auth.example.com/.well-known/jwks.json",
		Issuer:   "https://auth.example.com",
		Audience: "latch",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	mux := http.NewServeMux()
	mux.Handle("GET /me", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.ClaimsFrom(r.Context())
		fmt.Fprintln(w, "hello", c.Subject)
	})))
	mux.Handle("GET /invoices", v.RequireScopes("billing:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.ClaimsFrom(r.Context())
		fmt.Fprintln(w, "invoices of organization", c.OrgID)
	})))
	log.Fatal(http.ListenAndServe("127.0.0.1:9000", mux))
}

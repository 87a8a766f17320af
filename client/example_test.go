package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/latchauth/latch/client"
)

// Log in once, keep the session in a file, and call any operation: the
// Client refreshes the access token as needed.
func ExampleClient_SignIn() {
	ctx := context.Background()
	dir, _ := os.UserConfigDir()
	c, err := client.New("https://auth.example.com",
		client.WithTokenStore(client.NewFileStore(filepath.Join(dir, "myapp", "latch.json"))))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Token(ctx); errors.Is(err, client.ErrNotLoggedIn) {
		if _, err := c.SignIn(ctx, "ada@example.com", "correct horse battery staple"); errors.Is(err, client.ErrInvalidCredentials) {
			log.Fatal("wrong email or password")
		} else if err != nil {
			log.Fatal(err)
		}
	}
	me, err := c.Me(ctx)
	if errors.Is(err, client.ErrSessionEnded) {
		log.Fatal("the session has ended; log in again")
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println("logged in as", me.Id)

	// Every generated operation is reachable, typed and authenticated.
	res, err := c.API().ListSessionsWithResponse(ctx, nil)
	if err == nil {
		err = client.ResponseError(res)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(res.JSON200.Sessions), "sessions")
}

// A backend service exchanges its API key for short-lived access tokens;
// the Client exchanges again before each token expires.
func ExampleWithAPIKeyExchange() {
	ctx := context.Background()
	c, err := client.New("https://auth.example.com",
		client.WithAPIKeyExchange(os.Getenv("LATCH_API_KEY"), client.ExchangeRequest{Scopes: &[]string{"billing:read"}}))
	if err != nil {
		log.Fatal(err)
	}
	tok, err := c.Token(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("token for", tok.Scope, "until", tok.ExpiresAt)
}

// Sign in, and when the user has a second factor raise the session to
// aal2 with a code from their authenticator app.
func ExampleClient_MFA() {
	ctx := context.Background()
	c, err := client.New("https://auth.example.com")
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.SignIn(ctx, "ada@example.com", "correct horse battery staple")
	if err != nil {
		log.Fatal(err)
	}
	if res.MFA != nil && res.MFA.Has(client.MFAFactorTypeTotp) {
		var code string
		fmt.Print("code from your authenticator app: ")
		fmt.Scanln(&code)
		if _, err := c.MFA().VerifyTOTP(ctx, code); errors.Is(err, client.ErrMFAVerificationFailed) {
			log.Fatal("wrong code")
		} else if err != nil {
			log.Fatal(err)
		}
	}
	me, err := c.Me(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("signed in as", me.Id)
}

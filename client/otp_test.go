package client_test

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"testing"

	"github.com/latchauth/latch/client"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/mail"
)

// outbox is a mail transport that keeps the mails it is given.
type outbox struct {
	mu   sync.Mutex
	msgs []*mail.Message
}

func (o *outbox) Send(_ context.Context, m *mail.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs = append(o.msgs, m)
	return nil
}

var (
	otpCode  = regexp.MustCompile(`sign-in code is:\s*([0-9]{6})`)
	otpToken = regexp.MustCompile(`token=([A-Za-z0-9_-]{43})`)
)

// otpMail sends the mails l queued and returns the code and the link's
// token of the last one.
func otpMail(t *testing.T, l *latch) (code, tok string) {
	t.Helper()
	l.App.Service.WaitBackground()
	box := &outbox{}
	if _, err := l.App.Mail.WithTransport(box).Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(box.msgs) == 0 {
		t.Fatal("no mail")
	}
	text := box.msgs[len(box.msgs)-1].Text
	c := otpCode.FindStringSubmatch(text)
	if c == nil {
		t.Fatalf("no code in:\n%s", text)
	}
	if m := otpToken.FindStringSubmatch(text); m != nil {
		tok = m[1]
	}
	return c[1], tok
}

func TestSignInWithOTP(t *testing.T) {
	l := start(t, func(c *app.Config) { c.OTP.RedirectURLs = []string{"https://app.example.com/callback"} })
	ctx := context.Background()
	owner := l.newClient(t)
	tr := signup(t, owner)
	addr := string(*tr.User.Email)

	c := l.newClient(t)
	if err := c.SignInWithOTP(ctx, client.OTPRequest{Email: addr}); err != nil {
		t.Fatal(err)
	}
	code, _ := otpMail(t, l)
	res, err := c.VerifyOTP(ctx, client.OTPVerification{Email: addr, Code: code})
	if err != nil || res.MFA != nil || res.Tokens.Aal != client.Aal1 {
		t.Fatalf("verify the code: %v %+v", err, res)
	}
	me, err := c.Me(ctx)
	if err != nil || me.Id != tr.User.Id {
		t.Fatalf("me: %v %+v", err, me)
	}
	if _, err := l.newClient(t).VerifyOTP(ctx, client.OTPVerification{Email: addr, Code: code}); !errors.Is(err, client.ErrInvalidToken) {
		t.Fatalf("the code again: %v", err)
	}

	if err := c.SignInWithOTP(ctx, client.OTPRequest{Email: addr, RedirectTo: "https://app.example.com/callback"}); err != nil {
		t.Fatal(err)
	}
	_, tok := otpMail(t, l)
	if _, err := l.newClient(t).VerifyOTP(ctx, client.OTPVerification{Token: tok}); err != nil {
		t.Fatalf("the link's token: %v", err)
	}
	if err := c.SignInWithOTP(ctx, client.OTPRequest{Email: addr, RedirectTo: "https://evil.example/"}); !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("a redirect not allowed: %v", err)
	}

	fresh := email()
	n := l.newClient(t)
	if err := n.SignInWithOTP(ctx, client.OTPRequest{Email: fresh, CreateUser: true}); err != nil {
		t.Fatal(err)
	}
	code, _ = otpMail(t, l)
	res, err = n.VerifyOTP(ctx, client.OTPVerification{Email: fresh, Code: code})
	if err != nil || res.Tokens.User.Email == nil || string(*res.Tokens.User.Email) != fresh || !res.Tokens.User.EmailVerified {
		t.Fatalf("create_user: %v %+v", err, res)
	}
}

// Command latch-cli logs in to Latch once and keeps working across runs
// and across token expiry without asking again: its tokens live in a file
// (0600) that the SDK refreshes in place, under a file lock, so several
// invocations at once share one session safely.
//
//	latch-cli [-url URL] [-token-file PATH] <command>
//
//	signup   -email E  create an account (password from LATCH_PASSWORD or stdin)
//	login    -email E  log in (password from LATCH_PASSWORD or stdin)
//	me                 show the logged-in user
//	sessions           list the user's sessions
//	logout   [-all]    end this session (or all of them) and forget the tokens
//
// LATCH_URL and LATCH_TOKEN_FILE set the defaults of -url and -token-file
// (http://127.0.0.1:8080 and <user config dir>/latch-cli/tokens.json).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/latchauth/latch/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: latch-cli [-url URL] [-token-file PATH] <command>

commands:
  signup -email E   create an account (password from LATCH_PASSWORD or stdin)
  login -email E    log in (password from LATCH_PASSWORD or stdin)
  me                show the logged-in user
  sessions          list the user's sessions
  logout [-all]     end this session (or all of them) and forget the tokens
`

// run executes one command and returns the exit code: 0 on success, 1 on
// failure, 2 for a usage error.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer, opts ...client.Option) int {
	global := flag.NewFlagSet("latch-cli", flag.ContinueOnError)
	global.SetOutput(stderr)
	global.Usage = func() { fmt.Fprint(stderr, usage) }
	url := global.String("url", or(getenv("LATCH_URL"), "http://127.0.0.1:8080"), "Latch base URL (LATCH_URL)")
	tokenFile := global.String("token-file", getenv("LATCH_TOKEN_FILE"), "token file (LATCH_TOKEN_FILE)")
	if err := global.Parse(args); err != nil {
		return 2
	}
	if global.NArg() == 0 {
		global.Usage()
		return 2
	}
	if *tokenFile == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			fmt.Fprintln(stderr, "latch-cli: no user config directory; use -token-file:", err)
			return 1
		}
		*tokenFile = filepath.Join(dir, "latch-cli", "tokens.json")
	}
	// The SDK says once when the session ends (revoked, logged out
	// elsewhere, idle too long): the command then stops, and every later
	// call would fail at once without a request.
	var ended atomic.Bool
	onEnd := func(r client.SessionEndReason) {
		if r != client.SessionEndLogout && !ended.Swap(true) {
			fmt.Fprintln(stderr, "latch-cli: session ended, log in again: latch-cli login -email <email>")
		}
	}
	c, err := client.New(*url, append([]client.Option{
		client.WithTokenStore(client.NewFileStore(*tokenFile)),
		client.WithOnSessionEnd(onEnd),
	}, opts...)...)
	if err != nil {
		fmt.Fprintln(stderr, "latch-cli:", err)
		return 2
	}
	cmd, rest := global.Arg(0), global.Args()[1:]
	fs := flag.NewFlagSet("latch-cli "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	switch cmd {
	case "signup", "login":
		email := fs.String("email", "", "email address")
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		if *email == "" {
			fmt.Fprintf(stderr, "latch-cli %s: -email is required\n", cmd)
			return 2
		}
		pw, err := password(getenv, stdin, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "latch-cli:", err)
			return 1
		}
		var tr *client.TokenResponse
		if cmd == "signup" {
			tr, err = c.SignUp(ctx, *email, pw)
		} else {
			var res *client.SignInResult
			if res, err = c.SignIn(ctx, *email, pw); res != nil {
				tr = res.Tokens
			}
		}
		if err != nil {
			return fail(stderr, err, ended.Load())
		}
		fmt.Fprintf(stdout, "logged in as %s\n", emailOf(&tr.User))
		return 0
	case "me":
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		u, err := c.Me(ctx)
		if err != nil {
			return fail(stderr, err, ended.Load())
		}
		fmt.Fprintf(stdout, "%s\t%s\n", emailOf(u), u.Id)
		return 0
	case "sessions":
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		sessions, err := c.Sessions(ctx)
		if err != nil {
			return fail(stderr, err, ended.Load())
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCREATED\tLAST USED\tUSER AGENT\t")
		for _, s := range sessions {
			mark := ""
			if s.Current {
				mark = " (this one)"
			}
			ua := ""
			if s.UserAgent != nil {
				ua = *s.UserAgent
			}
			fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t\n", s.Id, mark, s.CreatedAt.Format(time.RFC3339), s.LastUsedAt.Format(time.RFC3339), ua)
		}
		tw.Flush()
		return 0
	case "logout":
		all := fs.Bool("all", false, "end every session of the user")
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		scope := client.LogoutLocal
		if *all {
			scope = client.LogoutGlobal
		}
		if err := c.Logout(ctx, scope); err != nil {
			return fail(stderr, err, ended.Load())
		}
		fmt.Fprintln(stdout, "logged out")
		return 0
	}
	fmt.Fprintf(stderr, "latch-cli: unknown command %q\n", cmd)
	global.Usage()
	return 2
}

// fail explains err and returns the exit code 1. told says that the end of
// the session has been reported already.
func fail(stderr io.Writer, err error, told bool) int {
	var backoff *client.RefreshBackoffError
	switch {
	case errors.Is(err, client.ErrSessionEnded):
		if !told {
			fmt.Fprintln(stderr, "latch-cli: session ended, log in again: latch-cli login -email <email>")
		}
	case errors.Is(err, client.ErrNotLoggedIn), errors.Is(err, client.ErrUnauthorized):
		fmt.Fprintln(stderr, "latch-cli: not logged in: run latch-cli login -email <email>")
	case errors.As(err, &backoff):
		fmt.Fprintf(stderr, "latch-cli: cannot renew the session now; try again in %v: %v\n", backoff.RetryAfter.Round(time.Second)+time.Second, backoff.Err)
	case errors.Is(err, client.ErrInvalidCredentials):
		fmt.Fprintln(stderr, "latch-cli: wrong email or password")
	default:
		fmt.Fprintln(stderr, "latch-cli:", err)
	}
	return 1
}

// password reads LATCH_PASSWORD, or else one line of stdin. (A terminal
// echoes it: pipe it in, or use a password manager's CLI.)
func password(getenv func(string) string, stdin io.Reader, stderr io.Writer) (string, error) {
	if pw := getenv("LATCH_PASSWORD"); pw != "" {
		return pw, nil
	}
	if f, ok := stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprint(stderr, "Password: ")
		}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password: set LATCH_PASSWORD or write it to stdin")
	}
	return line, nil
}

func emailOf(u *client.User) string {
	if u.Email != nil {
		return string(*u.Email)
	}
	return u.Id.String()
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

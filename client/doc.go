// Package client is the Latch Go SDK: one [Client], made by [New] and
// configured by [Option] values.
//
//	c, err := client.New("https://auth.example.com")
//	res, err := c.SignIn(ctx, email, password) // res.MFA != nil: a second factor is pending
//	_, err = c.MFA().VerifyTOTP(ctx, code)      // when it is
//	me, err := c.Me(ctx)
//
// The Client's methods cover the common flows: SignUp, SignIn, Refresh,
// Logout, Me, Sessions, API keys, organizations, the second factors of
// [Client.MFA], and the operators' admin API of [Client.Admin] ([NewAdmin]
// builds one from an operator's API key). Every operation of openapi.yaml is reached, typed, through
// [Client.API]: the generated client of package
// [github.com/latchauth/latch/client/latchapi], which also holds every
// generated model (this package re-exports, as aliases, those its methods
// take and return). Every request, through either, is authenticated by an
// [http.RoundTripper] that
//
//   - refreshes the access token before it expires (see [RefreshPolicy]),
//     one refresh at a time however many goroutines need it, in the
//     background while the token is still valid, so that no call waits;
//   - on a 401 token_expired or invalid_token refreshes once and retries the
//     request once, replaying its body;
//   - retries 429 and 503 with Retry-After (see [RetryPolicy]);
//   - never sends an authenticated operation without credentials: without a
//     session the call fails with [ErrNotLoggedIn], without a request.
//
// Tokens live in a [TokenStore]: in memory by default, or in a file shared
// by several processes ([FileStore]).
//
// # When the session ends or Latch pushes back
//
// A refresh that Latch refuses with invalid_grant (the session was revoked,
// logged out elsewhere, idle too long), a Logout, or another process
// clearing a shared store ends the session: the store is cleared, the
// function of [WithOnSessionEnd] is told once with a [SessionEndReason], and
// every later call that needs the session fails at once with an error
// matching [ErrSessionEnded] (and ErrNotLoggedIn), without a request, until
// a new SignIn.
//
// A refresh (or exchange) that Latch refuses for good (a 4xx other than
// 408 and 429, such as a 403 for an exchange the key may not make) fails
// at once with that [*Error], and is not tried again until a new session.
// One that fails otherwise is remembered: after a 429 or 503 none is tried
// before its Retry-After, after a network error or a 5xx none before an
// exponential backoff with jitter. Meanwhile calls whose access token is
// still valid go ahead with it, and calls whose token has expired fail at
// once with a [*RefreshBackoffError] ([ErrRefreshBackoff]), which says when
// the next attempt may be made. Exchanged tokens are kept the same way when
// renewing them fails.
//
// A request that gets no answer (Latch unreachable, the connection broken,
// a timeout) fails with a [*NetworkError], matching [ErrNetwork].
//
// The default transport keeps up to [DefaultMaxIdleConnsPerHost] idle
// connections to Latch, so that a busy service reuses them ([WithTransport]
// replaces it).
//
// A Client can also authenticate with an API key, sent as is ([WithAPIKey])
// or exchanged for short-lived access tokens ([WithAPIKeyExchange], with
// the scopes, audience and lifetime of an [ExchangeRequest]).
//
// Errors that Latch answers are [*Error] values; errors.Is matches them
// against the code constants such as [ErrInvalidCredentials].
//
// The package imports nothing of the Latch server; resource servers that
// accept Latch access tokens use the sibling package client/verify.
package client

// The hand-written part of the package is the Latch Go SDK.
//
// A [Client] wraps the generated [ClientWithResponses]: every generated
// operation, reached through [Client.API], is authenticated by an
// [http.RoundTripper] that
//
//   - refreshes the access token before it expires (see [RefreshPolicy]),
//     one refresh at a time however many goroutines need it;
//   - on a 401 token_expired or invalid_token refreshes once and retries the
//     request once, replaying its body;
//   - retries 429 and 503 with Retry-After (see [RetryPolicy]).
//
// Tokens live in a [TokenStore]: in memory by default, or in a file shared
// by several processes ([FileStore]). A refresh that Latch refuses with
// invalid_grant ends the session: the store is cleared and the error
// matches [ErrSessionEnded].
//
// A Client can also authenticate with an API key, sent as is ([WithAPIKey])
// or exchanged for short-lived access tokens ([WithAPIKeyExchange]).
//
// Errors that Latch answers are [*Error] values; errors.Is matches them
// against the code constants such as [ErrInvalidCredentials].
//
// The package imports nothing of the Latch server; resource servers that
// accept Latch access tokens use the sibling package client/verify.
package client

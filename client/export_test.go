package client

import "time"

// PublicPaths exposes the operations sent without credentials to the tests.
var PublicPaths = publicPaths

// WaitForRefresh waits until no renewal started in the background by c is
// running, so that tests can count its requests.
func WaitForRefresh(c *Client) { c.auth.bg.Wait() }

// WithJitter replaces the Client's random jitter (uniform in [0, max]),
// for tests that check backoffs exactly.
func WithJitter(f func(max time.Duration) time.Duration) Option {
	return func(s *settings) error {
		s.jitter = f
		return nil
	}
}

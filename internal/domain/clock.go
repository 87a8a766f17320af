package domain

import "time"

// Clock tells the time. Tests inject their own; production uses SystemClock.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock, in UTC with microsecond precision so that
// times survive a round trip through either database unchanged.
type SystemClock struct{}

// Now returns the current UTC time truncated to microseconds.
func (SystemClock) Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

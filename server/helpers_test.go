package server_test

import (
	"net/http"
	"testing"

	"github.com/latchauth/latch/internal/testutil"
)

func newValidatingClient(t *testing.T) *http.Client {
	return &http.Client{Transport: testutil.NewValidatingTransport(t, http.DefaultTransport)}
}

package server_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/latchauth/latch/internal/testutil"
)

// /docs serves the generated API reference, as it is in the tree.
func TestDocsServesTheGeneratedReference(t *testing.T) {
	want, err := os.ReadFile("pages/reference.html")
	if err != nil {
		t.Fatal(err)
	}
	s := testutil.Start(t, "sqlite")
	res, err := http.Get(s.URL + "/docs")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || len(want) == 0 || !bytes.Equal(got, want) {
		t.Fatalf("/docs: %d %v, %d bytes; want the %d bytes of pages/reference.html", res.StatusCode, res.Header, len(got), len(want))
	}
}

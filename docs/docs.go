// Package docs embeds the API reference page that `make generate` renders
// from openapi.yaml with Redocly (self-contained, works offline).
package docs

import (
	"bytes"
	_ "embed"
)

//go:embed index.html
var page []byte

// Page returns the self-contained HTML API reference, a copy of its own at
// each call.
func Page() []byte { return bytes.Clone(page) }

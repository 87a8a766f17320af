// Package docs embeds the API reference page that `make generate` renders
// from openapi.yaml with Redocly (self-contained, works offline).
package docs

import _ "embed"

// Page is the self-contained HTML API reference.
//
//go:embed index.html
var Page []byte

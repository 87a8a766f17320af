// Package latch is the root of the Latch module. It holds only the code
// generation directives: openapi.yaml is the single source of truth, and the
// files they write (*.gen.go) are never edited by hand.
package latch

//go:generate go tool oapi-codegen -config api/oapi-codegen.yaml openapi.yaml
//go:generate go tool oapi-codegen -config client/oapi-codegen.yaml openapi.yaml

import (
	"bytes"
	_ "embed"
)

//go:embed openapi.yaml
var specYAML []byte

// SpecYAML returns openapi.yaml, embedded so that the server publishes and
// validates against exactly the document it was generated from. Each call
// returns a copy of its own.
func SpecYAML() []byte { return bytes.Clone(specYAML) }

package server

import (
	"slices"
	"testing"

	latch "github.com/latchauth/latch"
	"github.com/latchauth/latch/internal/domain"
)

// TestEveryCodeOfTheSpecHasAStatus ties the one status map to the spec's
// ErrorCode enum: a code added to either without the other fails here.
func TestEveryCodeOfTheSpecHasAStatus(t *testing.T) {
	doc, err := LoadSpec(latch.SpecYAML())
	if err != nil {
		t.Fatal(err)
	}
	var enum []domain.Code
	for _, v := range doc.Components.Schemas["ErrorCode"].Value.Enum {
		enum = append(enum, domain.Code(v.(string)))
	}
	for _, c := range enum {
		if _, ok := statuses[c]; !ok {
			t.Errorf("the spec's code %q has no status", c)
		}
	}
	for c := range statuses {
		if !slices.Contains(enum, c) {
			t.Errorf("the code %q is not in the spec's ErrorCode enum", c)
		}
	}
}

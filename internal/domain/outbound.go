package domain

import "github.com/google/uuid"

// OutboundFilter selects a page of the outbound events feed.
type OutboundFilter struct {
	// After is the seq of the last event the reader has seen (0: none).
	After int64
	// Limit bounds the page (at least 1).
	Limit int
	// Types, when not empty, keeps only the events of these types.
	Types []string
	// OrgID, when not nil, keeps only the events of the organization.
	OrgID *uuid.UUID
}

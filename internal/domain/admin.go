package domain

import (
	"time"

	"github.com/google/uuid"
)

// UserFilter selects the users an operator lists; every set field must
// hold.
type UserFilter struct {
	// Email is a normalised email, matched exactly; EmailPrefix the start
	// of one.
	Email       string
	EmailPrefix string
	// OrgID selects the organization's members and its delegated
	// identities.
	OrgID *uuid.UUID
	// ExternalID selects delegated identities with this external id.
	ExternalID    string
	CreatedAfter  *time.Time
	CreatedBefore *time.Time
	// Banned selects the users banned at Now (true) or not (false).
	Banned *bool
	Now    time.Time
}

// UserSummary is a user as operators list them: the user and how many
// verified second factors they have.
type UserSummary struct {
	User
	FactorCount int
}

// Mail templates of the admin API.
const (
	// MailFactorsRemovedBySupport tells a user that an operator removed
	// their second factors.
	MailFactorsRemovedBySupport = "mfa_factors_removed_by_support"
)

// DeletedUser is what deleting a user removed that caches may still hold.
type DeletedUser struct {
	// Sessions are the active sessions that went with the user (and with
	// the delegated identities of the organizations deleted with them).
	Sessions []uuid.UUID
	// Keys are the API keys that went: the user's and those of the
	// organizations deleted with them.
	Keys []APIKey
	// Orgs are the organizations deleted with the user.
	Orgs []uuid.UUID
}

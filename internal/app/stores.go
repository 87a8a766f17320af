package app

import (
	"github.com/latchauth/latch/internal/service"
	"github.com/latchauth/latch/internal/sqlstore"
)

// The SQL store implements the storage interface of the core service and
// of every feature service (MFAStore: mfa.go). The assertions live here,
// where both are wired: the store package must not import the service.
var (
	_ service.Store         = (*sqlstore.Store)(nil)
	_ service.APIKeyStore   = (*sqlstore.Store)(nil)
	_ service.OAuthStore    = (*sqlstore.Store)(nil)
	_ service.OrgStore      = (*sqlstore.Store)(nil)
	_ service.RecoveryStore = (*sqlstore.Store)(nil)
	_ service.EventStore    = (*sqlstore.Store)(nil)
)

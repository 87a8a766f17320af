package app

import (
	"context"
	"fmt"
	"io"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"

	"github.com/latchauth/latch/internal/sqlstore"
	"github.com/latchauth/latch/internal/token"
)

// SealReport counts the values SealStoredValues sealed, per table.
type SealReport struct {
	SigningKeys         int
	ServerSecrets       int
	TOTPSeeds           int
	WebAuthnCredentials int
	WebhookSecrets      int
}

// Total is the number of values sealed.
func (r SealReport) Total() int {
	return r.SigningKeys + r.ServerSecrets + r.TOTPSeeds + r.WebAuthnCredentials + r.WebhookSecrets
}

// SealStoredValues seals with sealer's master key every value that the
// master key protects and that is stored unsealed (written while no master
// key was set): the signing keys' private keys and the server secrets, in
// one transaction per table. A value already sealed is checked to open
// under this key and left as it is, so running it again seals nothing.
// Returns an error when sealer has no key, or when a value does not open
// under it; the table being sealed is then left as it was.
func SealStoredValues(ctx context.Context, st *sqlstore.Store, sealer *token.Sealer) (SealReport, error) {
	var r SealReport
	var err error
	if r.SigningKeys, err = st.SealSigningKeys(ctx, func(kid string, stored []byte) ([]byte, bool, error) {
		return sealer.SealStored(stored, token.SigningKeyLabel(kid))
	}); err != nil {
		return r, fmt.Errorf("seal signing keys: %w", err)
	}
	if r.ServerSecrets, err = st.SealServerSecrets(ctx, func(name string, stored []byte) ([]byte, bool, error) {
		return sealer.SealStored(stored, token.SecretLabel(name))
	}); err != nil {
		return r, fmt.Errorf("seal server secrets: %w", err)
	}
	if r.TOTPSeeds, err = st.SealTOTPSeeds(ctx, func(id string, stored []byte) ([]byte, bool, error) {
		return sealer.SealStored(stored, token.TOTPSeedLabel(id))
	}); err != nil {
		return r, fmt.Errorf("seal TOTP seeds: %w", err)
	}
	if r.WebAuthnCredentials, err = st.SealWebAuthnCredentials(ctx, func(id string, stored []byte) ([]byte, bool, error) {
		return sealer.SealStored(stored, token.WebAuthnCredentialLabel(id))
	}); err != nil {
		return r, fmt.Errorf("seal WebAuthn credentials: %w", err)
	}
	if r.WebhookSecrets, err = st.SealWebhookSecrets(ctx, func(id string, stored []byte) ([]byte, bool, error) {
		eid, err := uuid.Parse(id)
		if err != nil {
			return nil, false, err
		}
		return sealer.SealStored(stored, domain.WebhookSecretLabel(eid))
	}); err != nil {
		return r, fmt.Errorf("seal webhook secrets: %w", err)
	}
	return r, nil
}

// sealCommand is latchd keys seal: it migrates the database, seals what is
// stored unsealed and reports how many rows it sealed.
func sealCommand(ctx context.Context, c Config, stdout, stderr io.Writer) int {
	if c.MasterKey == "" {
		fmt.Fprintln(stderr, "latchd: keys seal needs LATCH_MASTER_KEY: it encrypts the stored values with it")
		return 2
	}
	sealer, err := token.NewSealer(c.MasterKey)
	if err != nil {
		fmt.Fprintln(stderr, "latchd:", err)
		return 2
	}
	st, err := Open(ctx, c)
	if err != nil {
		fmt.Fprintln(stderr, "latchd:", err)
		return 1
	}
	defer st.Close()
	r, err := SealStoredValues(ctx, st, sealer)
	if err != nil {
		fmt.Fprintln(stderr, "latchd:", err)
		return 1
	}
	fmt.Fprintf(stdout, "sealed %d values (%d signing keys, %d server secrets, %d TOTP seeds, %d WebAuthn credentials, %d webhook secrets)\n",
		r.Total(), r.SigningKeys, r.ServerSecrets, r.TOTPSeeds, r.WebAuthnCredentials, r.WebhookSecrets)
	return 0
}

package app

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/service"
	"github.com/latchauth/latch/internal/sqlstore"
	"github.com/latchauth/latch/internal/token"
)

// rotateCommand is latchd keys rotate: it adds a new signing key of
// LATCH_SIGNING_ALG (--alg), which becomes the active one; older keys are
// retired and keep verifying, and stay in the JWKS, for two access-token
// lifetimes. Running instances load the new key when told (at once on
// PostgreSQL), at their next periodic reload, or when they meet a token
// signed with it; a staged key (LATCH_KEY_PUBLISH_DELAY) then signs on each
// instance from its activation time, judged on that instance's clock,
// without another reload.
func rotateCommand(ctx context.Context, c Config, clock domain.Clock, stdout, stderr io.Writer) int {
	st, err := Open(ctx, c)
	if err != nil {
		fmt.Fprintln(stderr, "latchd:", err)
		return 1
	}
	defer st.Close()
	sealer, err := token.NewSealer(c.MasterKey)
	if err != nil {
		fmt.Fprintln(stderr, "latchd:", err)
		return 1
	}
	now := clock.Now()
	k, err := token.GenerateKey(c.SigningAlg, now)
	if err != nil {
		fmt.Fprintln(stderr, "latchd:", err)
		return 1
	}
	if c.KeyPublishDelay > 0 {
		at := now.Add(c.KeyPublishDelay)
		k.ActivatesAt = &at
	}
	if k.PrivatePEM, err = sealer.Seal(k.PrivatePEM, token.SigningKeyLabel(k.KID)); err != nil {
		fmt.Fprintln(stderr, "latchd:", err)
		return 1
	}
	if err := st.AddSigningKey(ctx, k); err != nil {
		fmt.Fprintln(stderr, "latchd:", err)
		return 1
	}
	// Running instances load it at once (and at the latest when they meet
	// a token signed with it).
	if err := st.Publish(ctx, service.TopicSigningKeys, "", now); err != nil {
		fmt.Fprintln(stderr, "latchd: the key is stored, but telling the running instances failed (they load it within a minute):", err)
	}
	if k.ActivatesAt != nil {
		fmt.Fprintf(stdout, "new signing key: %s (%s), published now, signing from %s (LATCH_KEY_PUBLISH_DELAY)\n", k.KID, k.Alg, k.ActivatesAt.Format(time.RFC3339))
	} else {
		fmt.Fprintf(stdout, "new active signing key: %s (%s)\n", k.KID, k.Alg)
	}
	return 0
}

// listKeysCommand is latchd keys list: it only reads. It prints each key
// that still verifies tokens (or retired within two access-token
// lifetimes) with its algorithm and state: active (the one new tokens are
// signed with) or retired, with its times.
func listKeysCommand(ctx context.Context, c Config, clock domain.Clock, stdout, stderr io.Writer) int {
	st, err := sqlstore.Open(ctx, c.DatabaseURL, sqlstore.Options{MaxOpenConns: 2,
		NoPreparedStatements: !c.DBPreparedStatements, DirectURL: c.DatabaseDirectURL})
	if err != nil {
		fmt.Fprintln(stderr, "latchd: open database:", err)
		return 1
	}
	defer st.Close()
	now := clock.Now()
	keys, err := st.SigningKeys(ctx, now.Add(-2*c.AccessTTL))
	if err != nil {
		fmt.Fprintln(stderr, "latchd:", err)
		return 1
	}
	fmt.Fprintln(stdout, "KID\tALG\tSTATE\tCREATED\tACTIVATES\tRETIRES")
	active := false
	for _, k := range keys {
		state := "retired"
		switch {
		case k.ActivatesAt != nil && k.ActivatesAt.After(now):
			state = "published"
		case k.RetiredAt == nil || k.RetiredAt.After(now):
			state = "verifying"
			if !active {
				state, active = "active", true
			}
		}
		fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\t%s\t%s\n", k.KID, k.Alg, state, k.CreatedAt.UTC().Format(time.RFC3339),
			timeOr(k.ActivatesAt, k.CreatedAt), timeOr(k.RetiredAt, time.Time{}))
	}
	return 0
}

// timeOr formats t, or def when t is nil ("-" for a zero def).
func timeOr(t *time.Time, def time.Time) string {
	switch {
	case t != nil:
		return t.UTC().Format(time.RFC3339)
	case def.IsZero():
		return "-"
	}
	return def.UTC().Format(time.RFC3339)
}

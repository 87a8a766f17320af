package app

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/latchauth/latch/internal/service"
	"github.com/latchauth/latch/internal/sqlstore"
	"github.com/latchauth/latch/internal/token"
)

// rotateCommand is latchd keys rotate: it adds a new signing key of
// LATCH_SIGNING_ALG (--alg), which becomes the active one; older keys are
// retired and keep verifying, and stay in the JWKS, for two access-token
// lifetimes. Running instances pick the new key up when they reload their
// keys, at once when they meet a token signed with it.
func rotateCommand(ctx context.Context, c Config, stdout, stderr io.Writer) int {
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
	k, err := token.GenerateKey(c.SigningAlg, time.Now().UTC())
	if err != nil {
		fmt.Fprintln(stderr, "latchd:", err)
		return 1
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
	if err := st.Publish(ctx, service.TopicSigningKeys, ""); err != nil {
		fmt.Fprintln(stderr, "latchd: the key is stored, but telling the running instances failed (they load it within a minute):", err)
	}
	fmt.Fprintf(stdout, "new active signing key: %s (%s)\n", k.KID, k.Alg)
	return 0
}

// listKeysCommand is latchd keys list: it only reads. It prints each key
// that still verifies tokens (or retired within two access-token
// lifetimes) with its algorithm and state: active (the one new tokens are
// signed with) or retired, with its times.
func listKeysCommand(ctx context.Context, c Config, stdout, stderr io.Writer) int {
	st, err := sqlstore.Open(ctx, c.DatabaseURL, sqlstore.Options{MaxOpenConns: 2,
		NoPreparedStatements: !c.DBPreparedStatements, DirectURL: c.DatabaseDirectURL})
	if err != nil {
		fmt.Fprintln(stderr, "latchd: open database:", err)
		return 1
	}
	defer st.Close()
	keys, err := st.SigningKeys(ctx, time.Now().Add(-2*c.AccessTTL))
	if err != nil {
		fmt.Fprintln(stderr, "latchd:", err)
		return 1
	}
	fmt.Fprintln(stdout, "KID\tALG\tSTATE\tCREATED\tRETIRED")
	active := false
	for _, k := range keys {
		state, retired := "retired", "-"
		if k.RetiredAt == nil {
			state = "verifying"
			if !active {
				state, active = "active", true
			}
		} else {
			retired = k.RetiredAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\t%s\n", k.KID, k.Alg, state, k.CreatedAt.UTC().Format(time.RFC3339), retired)
	}
	return 0
}

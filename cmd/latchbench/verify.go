package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/latchauth/latch/client/verify"
)

// verifyScenario measures client/verify: in-process Verify calls, from -c
// goroutines in the same closed loop, of the seeded accounts' access tokens
// against the running latchd's JWKS. CPU and RSS are the benchmark
// process's own.
func (b *bench) verifyScenario(ctx context.Context) (Row, error) {
	alg := "ES256" // latchd's default
	for _, e := range b.o.extraEnv {
		if v, ok := strings.CutPrefix(e, "LATCH_SIGNING_ALG="); ok {
			alg = v
		}
	}
	v, err := verify.New(ctx, verify.Config{
		JWKSURL:    b.latchd.url() + "/.well-known/jwks.json",
		Issuer:     b.latchd.url(),
		Algorithms: []string{alg},
	})
	if err != nil {
		return Row{}, err
	}
	defer v.Close()
	// The first call fetches the JWKS: do it before measuring.
	if _, err := v.Verify(ctx, b.accts[0].access); err != nil {
		return Row{}, fmt.Errorf("verify: %w", err)
	}
	r, err := b.measure(ctx, "verify", b.o.conc, os.Getpid(), nil, func(ctx context.Context, w *worker) outcome {
		_, err := v.Verify(ctx, b.accts[w.id%len(b.accts)].access)
		return outcome{ok: err == nil}
	})
	r.Note = "client/verify in the benchmark process (" + alg + " signature check per call); CPU and RSS are the benchmark's"
	return r, err
}

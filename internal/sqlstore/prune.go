package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/latchauth/latch/internal/domain"
)

// pruneCandidates selects, for each kind, the ids of the rows that ended
// before the first ? and may go; the second ? is the batch size.
var pruneCandidates = map[string]string{
	// Refresh tokens go with their session, but only once it has ended: a
	// live session keeps its spent tokens so that their reuse is detected.
	domain.PruneRefreshTokens: `SELECT rt.id FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id
		WHERE s.revoked_at < ? OR s.expires_at < ? OR s.absolute_expires_at < ? LIMIT ?`,
	// A session goes once it ended and its tokens are gone, so that deleting
	// it never cascades to an unbounded number of rows.
	domain.PruneSessions: `SELECT id FROM sessions s
		WHERE (s.revoked_at < ? OR s.expires_at < ? OR s.absolute_expires_at < ?)
		  AND NOT EXISTS (SELECT 1 FROM refresh_tokens rt WHERE rt.session_id = s.id) LIMIT ?`,
	domain.PruneRecoveryTokens: `SELECT id FROM recovery_tokens WHERE used_at < ? OR expires_at < ? LIMIT ?`,
	domain.PruneEvents:         `SELECT id FROM security_events WHERE created_at < ? LIMIT ?`,
	domain.PruneOutbox:         `SELECT id FROM mail_outbox WHERE sent_at < ? OR failed_at < ? LIMIT ?`,
	// A shared rate limit's row whose theoretical arrival time is past is
	// a full bucket, the same as no row: the next check inserts it afresh.
	// A check racing with the delete either waits for it (and inserts) or
	// holds the row, which SKIP LOCKED then leaves alone.
	domain.PruneRateLimits:    `SELECT key FROM rate_limits WHERE tat < ? LIMIT ?`,
	domain.PruneMFAChallenges: `SELECT challenge_hash FROM mfa_challenges WHERE expires_at < ? LIMIT ?`,
	domain.PruneMFAFactors:    `SELECT id FROM mfa_factors WHERE verified_at IS NULL AND created_at < ? LIMIT ?`,
	// A webhook message is keyed by its endpoint and event.
	domain.PruneWebhookMessages: `SELECT endpoint_id, event_id FROM webhook_messages WHERE delivered_at < ? OR failed_at < ? LIMIT ?`,
	domain.PruneWebhookAttempts: `SELECT id FROM webhook_attempts WHERE attempted_at < ? LIMIT ?`,
	// Outbound events go oldest first, along the primary key.
	domain.PruneOutboundEvents: `SELECT seq FROM outbound_events WHERE created_at < ? ORDER BY seq LIMIT ?`,
	domain.PruneOTPChallenges:  `SELECT id FROM otp_challenges WHERE expires_at < ? LIMIT ?`,
	domain.PruneProviderFlows:  `SELECT state_hash FROM provider_flows WHERE expires_at < ? LIMIT ?`,
	domain.PruneProviderCodes:  `SELECT code_hash FROM provider_codes WHERE expires_at < ? LIMIT ?`,
}

// pruneTables names each kind's table and its key column.
var pruneTables = map[string]struct{ table, key string }{
	domain.PruneRefreshTokens:   {"refresh_tokens", "id"},
	domain.PruneSessions:        {"sessions", "id"},
	domain.PruneRecoveryTokens:  {"recovery_tokens", "id"},
	domain.PruneEvents:          {"security_events", "id"},
	domain.PruneOutbox:          {"mail_outbox", "id"},
	domain.PruneRateLimits:      {"rate_limits", "key"},
	domain.PruneMFAChallenges:   {"mfa_challenges", "challenge_hash"},
	domain.PruneMFAFactors:      {"mfa_factors", "id"},
	domain.PruneWebhookMessages: {"webhook_messages", "(endpoint_id, event_id)"},
	domain.PruneWebhookAttempts: {"webhook_attempts", "id"},
	domain.PruneOutboundEvents:  {"outbound_events", "seq"},
	domain.PruneOTPChallenges:   {"otp_challenges", "id"},
	domain.PruneProviderFlows:   {"provider_flows", "state_hash"},
	domain.PruneProviderCodes:   {"provider_codes", "code_hash"},
}

// Prune deletes at most limit rows of the kind that ended before before, in
// one short statement. On PostgreSQL the candidates are locked with SKIP
// LOCKED, so several instances pruning at once neither wait on nor deadlock
// with each other (or with a transaction that is using a row).
func (s *Store) Prune(ctx context.Context, kind string, before time.Time, limit int) (int, error) {
	sel, ok := pruneCandidates[kind]
	if !ok {
		return 0, fmt.Errorf("sqlstore: unknown prune kind %q", kind)
	}
	if limit <= 0 {
		return 0, nil
	}
	if s.dialect == Postgres {
		if kind == domain.PruneRefreshTokens {
			sel += " FOR UPDATE OF rt SKIP LOCKED"
		} else {
			sel += " FOR UPDATE SKIP LOCKED"
		}
	}
	var args []any
	for range countPlaceholders(sel) - 1 {
		args = append(args, ts(before))
	}
	args = append(args, limit)
	t := pruneTables[kind]
	res, err := s.exec(ctx, `DELETE FROM `+t.table+` WHERE `+t.key+` IN (`+sel+`)`, args...)
	if err != nil {
		return 0, translate(err)
	}
	n, err := res.RowsAffected()
	return int(n), translate(err)
}

func countPlaceholders(q string) int {
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
		}
	}
	return n
}

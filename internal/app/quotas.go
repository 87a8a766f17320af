package app

import (
	"flag"
)

// quotaFlags registers the mail quotas, the limits of delegated sessions and
// invitations, and the per-owner quotas through ParseConfig's helpers.
func quotaFlags(c *Config, integer func(p *int, name, env, usage string), value func(v flag.Value, name, env, usage string)) {
	value(ruleFlag{&c.Limits.MailRecipient}, "rate-mail-recipient", "LATCH_RATE_MAIL_RECIPIENT", "mails to one address, whatever causes them, N/duration (counted in the outbox, across instances)")
	value(ruleFlag{&c.Limits.MailOrg}, "rate-mail-org", "LATCH_RATE_MAIL_ORG", "notification mails (invitations) one organization causes, N/duration")
	value(ruleFlag{&c.Limits.DelegatedKey}, "rate-delegated-key", "LATCH_RATE_DELEGATED_KEY", "delegated sessions one organization key opens, N/duration")
	value(ruleFlag{&c.Limits.InviteOrg}, "rate-invite-org", "LATCH_RATE_INVITE_ORG", "invitations per organization, N/duration")
	value(ruleFlag{&c.Limits.InviteUser}, "rate-invite-user", "LATCH_RATE_INVITE_USER", "invitations per inviting user, N/duration")
	integer(&c.Quotas.APIKeys, "quota-api-keys", "LATCH_QUOTA_API_KEYS", "active API keys per owner (0: no quota)")
	integer(&c.Quotas.Sessions, "quota-sessions", "LATCH_QUOTA_SESSIONS", "active sessions per user; a new login beyond ends the oldest (0: no quota)")
	integer(&c.Quotas.Organizations, "quota-organizations", "LATCH_QUOTA_ORGANIZATIONS", "organizations one user may own (0: no quota)")
	integer(&c.Quotas.Members, "quota-members", "LATCH_QUOTA_MEMBERS", "members plus pending invitations per organization (0: no quota)")
	integer(&c.Quotas.DelegatedIdentities, "quota-delegated-identities", "LATCH_QUOTA_DELEGATED_IDENTITIES", "delegated identities per organization (0: no quota)")
	integer(&c.Quotas.WebhookEndpoints, "quota-webhook-endpoints", "LATCH_QUOTA_WEBHOOK_ENDPOINTS", "webhook endpoints per organization, and for the operators together (0: no quota)")
}

func (c *Config) validateQuotas(bad func(env, format string, args ...any)) {
	for env, n := range map[string]int{
		"LATCH_QUOTA_API_KEYS": c.Quotas.APIKeys, "LATCH_QUOTA_SESSIONS": c.Quotas.Sessions,
		"LATCH_QUOTA_ORGANIZATIONS": c.Quotas.Organizations, "LATCH_QUOTA_MEMBERS": c.Quotas.Members,
		"LATCH_QUOTA_DELEGATED_IDENTITIES": c.Quotas.DelegatedIdentities, "LATCH_QUOTA_WEBHOOK_ENDPOINTS": c.Quotas.WebhookEndpoints,
	} {
		if n < 0 {
			bad(env, "want a whole number, 0 for no quota, such as 100")
		}
	}
}

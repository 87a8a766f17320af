package app

import (
	"flag"
	"time"

	"github.com/latchauth/latch/internal/service"
	"github.com/latchauth/latch/internal/sqlstore"
)

var _ service.OTPStore = (*sqlstore.Store)(nil)

// OTPConfig configures email sign-in links and codes.
type OTPConfig struct {
	// TTL is how long a mailed link and code work.
	TTL time.Duration
	// URL is the link template of a mail whose request named no
	// redirect_to: an absolute URL or a path below the public URL, with
	// {token}; "" mails the code alone then.
	URL string
	// RedirectURLs is the allow-list of a request's redirect_to
	// (LATCH_OTP_REDIRECT_URLS).
	RedirectURLs []string
}

func defaultOTP() OTPConfig { return OTPConfig{TTL: service.DefaultOTPTTL} }

// otpFlags registers the settings of email sign-in.
func otpFlags(c *Config, str func(p *string, name, env, usage string), dur func(p *time.Duration, name, env, usage string), value func(v flag.Value, name, env, usage string)) {
	dur(&c.OTP.TTL, "otp-ttl", "LATCH_OTP_TTL", "lifetime of a mailed sign-in link and code")
	str(&c.OTP.URL, "otp-url", "LATCH_OTP_URL", "sign-in page of mails whose request names no redirect_to: absolute URL or path below the public URL, with {token} (empty: the mail carries the code alone)")
	value(listFlag{&c.OTP.RedirectURLs}, "otp-redirect-urls", "LATCH_OTP_REDIRECT_URLS", "comma-separated pages a sign-in mail's redirect_to may name (absolute URLs; a final /* allows every page below)")
	value(ruleFlag{&c.Limits.OTPEmail}, "rate-otp-email", "LATCH_RATE_OTP_EMAIL", "sign-in mails asked for one address, N/duration")
	value(ruleFlag{&c.Limits.OTPIP}, "rate-otp-ip", "LATCH_RATE_OTP_IP", "sign-in mails asked per client IP, N/duration")
	value(ruleFlag{&c.Limits.OTPVerifyIP}, "rate-otp-verify-ip", "LATCH_RATE_OTP_VERIFY_IP", "sign-in codes and links presented per client IP, N/duration")
}

// validateOTP checks the settings of email sign-in.
func (c *Config) validateOTP(bad func(env, format string, args ...any)) {
	if c.OTP.TTL < time.Minute || c.OTP.TTL > time.Hour {
		bad("LATCH_OTP_TTL", "want a duration between 1m and 1h such as 10m")
	}
	if c.OTP.URL != "" {
		if err := service.CheckLinkTemplate(c.Recovery.link(c.OTP.URL)); err != nil {
			bad("LATCH_OTP_URL", "%v; want an absolute URL or a path below LATCH_PUBLIC_URL, with {token}, such as https://app.example.com/sign-in?token={token}", err)
		}
	}
	if err := service.CheckRedirectURLs(c.OTP.RedirectURLs); err != nil {
		bad("LATCH_OTP_REDIRECT_URLS", "%v; want comma-separated absolute URLs such as https://app.example.com/auth/callback,https://app.example.com/magic/*", err)
	}
}

// serviceConfig is the service's part of the configuration.
func (c *Config) otpServiceConfig() service.OTPConfig {
	link := ""
	if c.OTP.URL != "" {
		link = c.Recovery.link(c.OTP.URL)
	}
	return service.OTPConfig{TTL: c.OTP.TTL, LinkURL: link, RedirectURLs: c.OTP.RedirectURLs}
}

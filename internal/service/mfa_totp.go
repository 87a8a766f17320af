package service

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"time"

	"github.com/google/uuid"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/token"
)

// TOTP follows RFC 6238 with the parameters every authenticator app
// supports: SHA-1, 6 digits, 30-second steps, a 160-bit seed. A code is
// accepted one step either side of now, and once.
const (
	totpPeriod = 30
	totpSkew   = 1
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// totpLabel is the label a factor's TOTP seed is sealed under.
func totpLabel(id uuid.UUID) string { return token.TOTPSeedLabel(id.String()) }

// TOTPEnrollment is a started TOTP enrolment: the secret, shown this once.
type TOTPEnrollment struct {
	Factor     domain.Factor
	Secret     string
	URI        string
	QRCodePNG  []byte
	QRCodeData string // the PNG as a data: URL
}

// EnrollTOTP starts a TOTP enrolment: an unverified factor whose seed is
// stored sealed with the master key, which only the caller's session may
// confirm, within EnrollmentTTL. Its aal2 (when the user already has a
// verified factor) is declared in the spec. Returns CodeQuotaExceeded,
// CodeInvalidRequest for a bad name.
func (m *MFA) EnrollTOTP(ctx context.Context, p *domain.Principal, name string) (*TOTPEnrollment, error) {
	name, err := factorName(name, "Authenticator app")
	if err != nil {
		return nil, err
	}
	u, _, err := m.enrolling(ctx, p)
	if err != nil {
		return nil, err
	}
	account := u.Email
	if account == "" {
		account = u.ID.String()
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: m.cfg.Issuer, AccountName: account, Period: totpPeriod,
		SecretSize: 20, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, err
	}
	png, err := qrcode.Encode(key.URL(), qrcode.Medium, 256)
	if err != nil {
		return nil, err
	}
	now := m.clock.Now()
	sid := p.SessionID
	f := domain.Factor{ID: uuid.New(), UserID: u.ID, Type: domain.FactorTOTP, Name: name, CreatedAt: now, SessionID: &sid}
	if f.TOTPSecret, err = m.sealer.Seal([]byte(key.Secret()), totpLabel(f.ID)); err != nil {
		return nil, err
	}
	if err := m.store.CreateFactor(ctx, &f); err != nil {
		return nil, err
	}
	return &TOTPEnrollment{Factor: f, Secret: key.Secret(), URI: key.URL(), QRCodePNG: png,
		QRCodeData: "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)}, nil
}

// ConfirmTOTP completes a TOTP enrolment with a correct, unused code: the
// factor is verified, every other pending enrolment of the user is deleted
// and the caller's session becomes aal2 (see confirm). Only the session
// that started the enrolment may confirm it, within EnrollmentTTL; its aal2
// is declared in the spec, as for enrolling. Attempts are rate limited like
// Verify. Returns CodeNotFound for a factor that is not an unverified TOTP
// factor of the user started by this session in the last EnrollmentTTL,
// CodeMFAVerificationFailed for a wrong or replayed code, CodeRateLimited.
func (m *MFA) ConfirmTOTP(ctx context.Context, p *domain.Principal, id uuid.UUID, code string, meta domain.RequestMeta) (*Enrollment, error) {
	if err := needUser(p); err != nil {
		return nil, err
	}
	if err := m.limit(ctx, p.UserID, meta); err != nil {
		return nil, err
	}
	fs, err := m.store.ListFactors(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	var f *domain.Factor
	now := m.clock.Now()
	for i := range fs {
		g := &fs[i]
		if g.ID == id && g.Type == domain.FactorTOTP && !g.Verified() &&
			g.SessionID != nil && *g.SessionID == p.SessionID && now.Sub(g.CreatedAt) <= m.cfg.EnrollmentTTL {
			f = g
		}
	}
	if f == nil {
		return nil, domain.Errorf(domain.CodeNotFound, "no pending TOTP enrolment with this id started by this session in the last %s", m.cfg.EnrollmentTTL)
	}
	if err := m.checkTOTP(ctx, f, code); err != nil {
		return nil, m.failed(ctx, p, MethodTOTP, meta, err)
	}
	m.succeeded(ctx, p.UserID)
	return m.confirm(ctx, p, f, false, domain.AMROTP, meta)
}

// verifyTOTP accepts a code of any of the user's verified TOTP factors.
func (m *MFA) verifyTOTP(ctx context.Context, userID uuid.UUID, code string) (string, error) {
	fs, err := m.store.ListFactors(ctx, userID)
	if err != nil {
		return "", err
	}
	for i := range fs {
		f := &fs[i]
		if f.Type != domain.FactorTOTP || !f.Verified() {
			continue
		}
		err := m.checkTOTP(ctx, f, code)
		if err == nil {
			_ = m.store.UseFactor(ctx, f, m.clock.Now())
			return domain.AMROTP, nil
		}
		if !domain.IsCode(err, domain.CodeMFAVerificationFailed) {
			return "", err
		}
	}
	return "", errWrongFactor
}

// checkTOTP checks code against the factor's seed at the steps around now,
// comparing every candidate in constant time, and records the matched step
// so that the code is refused if presented again. Returns
// CodeMFAVerificationFailed for a wrong or replayed code.
func (m *MFA) checkTOTP(ctx context.Context, f *domain.Factor, code string) error {
	if len(code) != 6 {
		return errWrongFactor
	}
	seed, err := m.sealer.Open(f.TOTPSecret, totpLabel(f.ID))
	if err != nil {
		return err
	}
	now := m.clock.Now()
	step := now.Unix() / totpPeriod
	matched := int64(-1)
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		s := step + d
		want, err := totp.GenerateCodeCustom(string(seed), time.Unix(s*totpPeriod, 0), totpOpts)
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			matched = s
		}
	}
	if matched < 0 {
		return errWrongFactor
	}
	if err := m.store.UseTOTPStep(ctx, f.ID, matched, now); err != nil {
		if domain.IsCode(err, domain.CodeConflict) {
			return domain.Errorf(domain.CodeMFAVerificationFailed, "code replayed")
		}
		return err
	}
	return nil
}

package domain

import (
	"time"

	"github.com/google/uuid"
)

// MailOTP is the template of a sign-in mail: a link and a 6-digit code for
// one pending OTPChallenge.
const MailOTP = "email_otp"

// AMR of a session opened with a mailed link or code is AMROTP: RFC 8176's
// "otp" (a one-time password), the method the issue names.

// OTPMaxAttempts is how many wrong codes a challenge takes: the attempt
// that reaches it ends the challenge, link included.
const OTPMaxAttempts = 5

// OTPChallenge is a pending email sign-in: one per address, answered once
// by its link's token or by its 6-digit code. Neither is stored: TokenHash
// is the SHA-256 of the token, CodeHash a keyed hash (HMAC-SHA-256 under a
// server secret) of the email and the code, so that a copy of the database
// does not give the codes by trying the million of them.
type OTPChallenge struct {
	ID        uuid.UUID
	Email     string
	TokenHash []byte
	CodeHash  []byte
	// CreateUser creates the account on verification if none has Email.
	CreateUser bool
	// Attempts counts the codes tried against the challenge.
	Attempts  int
	CreatedAt time.Time
	ExpiresAt time.Time
}

// OTPRedeem is what one verification presents: TokenHash (a link), or
// Email and a code that Check accepts or refuses.
type OTPRedeem struct {
	// TokenHash is the SHA-256 of a link's token; nil for a code.
	TokenHash []byte
	// Email is the address a code is presented for.
	Email string
	// Check reports whether the presented code is the challenge's; it is
	// called after the attempt was counted, in the redeeming transaction.
	Check func(*OTPChallenge) bool
	// NewUser is the account to create when the challenge asks for one and
	// no account has its email; its Email is set from the challenge.
	NewUser *User
	Now     time.Time
}

// OTPResult is what a redeemed challenge signs in.
type OTPResult struct {
	User User
	// Created is set when the account was created by this verification.
	Created bool
	// Verified is set when this verification marked the email verified.
	Verified bool
}

package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// Authenticator is a small software WebAuthn authenticator for tests: one
// P-256 credential, "none" attestation, a sign counter, the UP and UV
// flags and, when Synced is set, the backup flags of a synced passkey.
type Authenticator struct {
	t      testing.TB
	key    *ecdsa.PrivateKey
	credID []byte
	user   []byte // the user handle the RP gave at registration
	count  uint32
	// Synced sets the BE and BS flags: a passkey that syncs.
	Synced bool
	// NoUV clears the UV flag: the user was not verified.
	NoUV bool
}

// NewAuthenticator returns an authenticator with a new key.
func NewAuthenticator(t testing.TB) *Authenticator {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return &Authenticator{t: t, key: k, credID: id}
}

var b64 = base64.RawURLEncoding

// PublicKey returns options["publicKey"] of a ceremony's options.
func PublicKey(t testing.TB, options map[string]any) map[string]any {
	t.Helper()
	pk, ok := options["publicKey"].(map[string]any)
	if !ok {
		t.Fatalf("options without publicKey: %v", options)
	}
	return pk
}

func (a *Authenticator) flags() byte {
	f := byte(0x01) // UP
	if !a.NoUV {
		f |= 0x04 // UV
	}
	if a.Synced {
		f |= 0x08 | 0x10 // BE, BS
	}
	return f
}

func (a *Authenticator) clientData(typ, challenge, origin string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return b
}

// Create answers navigator.credentials.create() for the options (of
// POST /auth/mfa/webauthn/registration), as a browser on origin would.
func (a *Authenticator) Create(options map[string]any, origin string) map[string]any {
	t := a.t
	t.Helper()
	pk := PublicKey(t, options)
	rp, _ := pk["rp"].(map[string]any)
	rpID, _ := rp["id"].(string)
	user, _ := pk["user"].(map[string]any)
	uid, _ := user["id"].(string)
	var err error
	if a.user, err = b64.DecodeString(uid); err != nil {
		t.Fatalf("user.id %q: %v", uid, err)
	}
	challenge, _ := pk["challenge"].(string)
	cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1,
		-2: a.key.PublicKey.X.FillBytes(make([]byte, 32)), -3: a.key.PublicKey.Y.FillBytes(make([]byte, 32))})
	if err != nil {
		t.Fatal(err)
	}
	rpHash := sha256.Sum256([]byte(rpID))
	auth := append([]byte{}, rpHash[:]...)
	auth = append(auth, a.flags()|0x40) // AT
	auth = binary.BigEndian.AppendUint32(auth, a.count)
	auth = append(auth, make([]byte, 16)...) // AAGUID
	auth = binary.BigEndian.AppendUint16(auth, uint16(len(a.credID)))
	auth = append(auth, a.credID...)
	auth = append(auth, cose...)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": auth})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"id": b64.EncodeToString(a.credID), "rawId": b64.EncodeToString(a.credID), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(a.clientData("webauthn.create", challenge, origin)),
			"attestationObject": b64.EncodeToString(att),
			"transports":        []string{"internal"},
		},
	}
}

// Get answers navigator.credentials.get() for the options, as a browser on
// origin would; the sign counter moves on.
func (a *Authenticator) Get(options map[string]any, origin string) map[string]any {
	t := a.t
	t.Helper()
	pk := PublicKey(t, options)
	rpID, _ := pk["rpId"].(string)
	challenge, _ := pk["challenge"].(string)
	a.count++
	rpHash := sha256.Sum256([]byte(rpID))
	auth := append([]byte{}, rpHash[:]...)
	auth = append(auth, a.flags())
	auth = binary.BigEndian.AppendUint32(auth, a.count)
	cd := a.clientData("webauthn.get", challenge, origin)
	cdHash := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, auth...), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"id": b64.EncodeToString(a.credID), "rawId": b64.EncodeToString(a.credID), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cd),
			"authenticatorData": b64.EncodeToString(auth),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(a.user),
		},
	}
}

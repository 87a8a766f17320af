package token

import (
	"encoding/base64"
	"encoding/json"
)

// The header of every token a key signs is the same, so it is encoded once
// per key (encodeHeader, at parse time); the claims are marshalled straight
// into one buffer. The result is byte for byte what jwt.Token.SignedString
// makes (a header object with sorted keys, base64url without padding), with
// a fraction of the allocations.

// encodeHeader returns the key's encoded JOSE header.
func encodeHeader(k *key) (string, error) {
	b, err := json.Marshal(map[string]string{"alg": k.method.Alg(), "kid": k.kid, "typ": TypAccessToken})
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// sign returns the compact JWS of the claims under the key.
func (k *key) sign(c *Claims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	// 132 bytes hold the largest ES256 or EdDSA signature; RS256 grows once.
	buf := make([]byte, 0, len(k.hdr)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(132))
	buf = append(buf, k.hdr...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	sig, err := k.method.Sign(string(buf), k.priv)
	if err != nil {
		return "", err
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

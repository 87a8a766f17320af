package server_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// jwksKeyfunc builds a golang-jwt keyfunc from a JWKS document, as a
// resource server with no Latch code would.
func jwksKeyfunc(t *testing.T, doc []byte) jwt.Keyfunc {
	t.Helper()
	var set struct {
		Keys []struct{ Kid, Kty, Crv, X, Y, N, E string }
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatal(err)
	}
	keys := map[string]any{}
	b := base64.RawURLEncoding
	for _, k := range set.Keys {
		switch k.Kty {
		case "EC":
			x, _ := b.DecodeString(k.X)
			y, _ := b.DecodeString(k.Y)
			keys[k.Kid] = &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
		case "OKP":
			x, _ := b.DecodeString(k.X)
			keys[k.Kid] = ed25519.PublicKey(x)
		case "RSA":
			n, _ := b.DecodeString(k.N)
			e, _ := b.DecodeString(k.E)
			keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		}
	}
	return func(tk *jwt.Token) (any, error) {
		kid, _ := tk.Header["kid"].(string)
		if k, ok := keys[kid]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
}

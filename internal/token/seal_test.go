package token

import (
	"errors"
	"strings"
	"testing"
)

const (
	testMasterKey  = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	otherMasterKey = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
)

// TestOpenRefusesUnsealedValuesUnderAMasterKey: once a master key is set, a
// value stored in the clear (say, a signing key an attacker with write
// access to the database put there) is refused, with the fix in the error.
func TestOpenRefusesUnsealedValuesUnderAMasterKey(t *testing.T) {
	s, err := NewSealer(testMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Open([]byte("-----BEGIN PRIVATE KEY-----"), SigningKeyLabel("k1"))
	if !errors.Is(err, ErrUnsealed) || !strings.Contains(err.Error(), "latchd keys seal") || !strings.Contains(err.Error(), "signing-key:k1") {
		t.Fatalf("Open of an unsealed value under a master key: %v", err)
	}
	plain, _ := NewSealer("")
	if got, err := plain.Open([]byte("clear"), SecretLabel("x")); err != nil || string(got) != "clear" {
		t.Fatalf("without a master key an unsealed value must open as it is: %q %v", got, err)
	}
}

func TestSealStoredIsIdempotentAndChecksTheKey(t *testing.T) {
	s, _ := NewSealer(testMasterKey)
	label := SecretLabel("refresh-successor")
	sealed, changed, err := s.SealStored([]byte("secret bytes"), label)
	if err != nil || !changed || !IsSealed(sealed) {
		t.Fatalf("first SealStored: %q %v %v", sealed, changed, err)
	}
	again, changed, err := s.SealStored(sealed, label)
	if err != nil || changed || string(again) != string(sealed) {
		t.Fatalf("second SealStored changed a sealed value: %v %v", changed, err)
	}
	if got, err := s.Open(sealed, label); err != nil || string(got) != "secret bytes" {
		t.Fatalf("Open after SealStored: %q %v", got, err)
	}
	other, _ := NewSealer(otherMasterKey)
	if _, _, err := other.SealStored(sealed, label); err == nil {
		t.Fatal("SealStored accepted a value sealed under another master key")
	}
	plain, _ := NewSealer("")
	if _, _, err := plain.SealStored([]byte("x"), label); err == nil {
		t.Fatal("SealStored without a master key")
	}
}

package crypto

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
)

// minRSABits is the smallest KSeF public key accepted. The Ministry's keys
// are 2048 bits or more; anything smaller is a misconfiguration.
const minRSABits = 2048

// ParsePublicKey parses the KSeF public key: base64 of a DER
// SubjectPublicKeyInfo holding an RSA key of at least 2048 bits. Errors
// wrap [ErrBase64] or [ErrPublicKey].
func ParsePublicKey(b64DER string) (*rsa.PublicKey, error) {
	der, err := DecodeBase64(b64DER)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPublicKey, err)
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: got %T, want RSA", ErrPublicKey, key)
	}
	if bits := pub.N.BitLen(); bits < minRSABits {
		return nil, fmt.Errorf("%w: %d-bit modulus, want at least %d", ErrPublicKey, bits, minRSABits)
	}
	return pub, nil
}

// EncodePublicKey is the inverse of [ParsePublicKey]: base64 of the DER
// SubjectPublicKeyInfo of pub.
func EncodePublicKey(pub *rsa.PublicKey) (string, error) {
	if pub == nil {
		return "", fmt.Errorf("%w: nil key", ErrPublicKey)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrPublicKey, err)
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

// WrapKey encrypts key (normally the session's AES key) with RSA-OAEP,
// SHA-256 for both the hash and MGF1 and an empty label, and returns the
// result in base64, as EncryptionInfo.encryptedKey expects. Every call
// gives a different ciphertext.
func WrapKey(pub *rsa.PublicKey, key []byte) (string, error) {
	if pub == nil {
		return "", fmt.Errorf("%w: nil key", ErrPublicKey)
	}
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, key, nil)
	if err != nil {
		// rsa's errors describe sizes, never the message.
		return "", fmt.Errorf("kcrypto: wrapping key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(ct), nil
}

// UnwrapKey reverses [WrapKey] with the private key (the emulator's side of
// the protocol). Bad base64 yields an error wrapping [ErrBase64]. Any OAEP
// failure yields the same error, wrapping [ErrUnwrap] and
// [rsa.ErrDecryption], with no detail: telling the reasons apart would help
// an attacker probing the key (Manger's attack).
func UnwrapKey(priv *rsa.PrivateKey, wrappedB64 string) ([]byte, error) {
	if priv == nil {
		return nil, fmt.Errorf("%w: nil private key", ErrUnwrap)
	}
	ct, err := DecodeBase64(wrappedB64)
	if err != nil {
		return nil, err
	}
	key, err := rsa.DecryptOAEP(sha256.New(), nil, priv, ct, nil)
	if err != nil {
		if errors.Is(err, rsa.ErrDecryption) {
			return nil, errUnwrap
		}
		// Not about the ciphertext: an unusable private key, say.
		return nil, fmt.Errorf("%w: %w", ErrUnwrap, err)
	}
	return key, nil
}

var errUnwrap = fmt.Errorf("%w: %w", ErrUnwrap, rsa.ErrDecryption)

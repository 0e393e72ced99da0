package crypto

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
)

// rsaTestKey returns a 2048-bit key generated once per test binary: key
// generation is slow.
var rsaTestKey = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 2048)
})

func testPrivateKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsaTestKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestWrapUnwrapRoundTrip(t *testing.T) {
	priv := testPrivateKey(t)
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	w1, err := WrapKey(&priv.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := WrapKey(&priv.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if w1 == w2 {
		t.Error("two wraps of the same key are identical: OAEP must be randomised")
	}
	for _, w := range []string{w1, w2} {
		ct, err := base64.StdEncoding.DecodeString(w)
		if err != nil {
			t.Fatalf("WrapKey output is not std base64: %v", err)
		}
		if len(ct) != priv.Size() {
			t.Errorf("wrapped key is %d bytes, want the modulus size %d", len(ct), priv.Size())
		}
		// The scheme itself, independent of UnwrapKey: OAEP with SHA-256 and MGF1-SHA-256.
		if got, err := rsa.DecryptOAEP(sha256.New(), nil, priv, ct, nil); err != nil || !bytes.Equal(got, key) {
			t.Errorf("rsa.DecryptOAEP(SHA-256) of WrapKey output = %x, %v", got, err)
		}
		got, err := UnwrapKey(priv, w)
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("UnwrapKey = %x, %v", got, err)
		}
	}
}

func TestUnwrapOpenSSLKey(t *testing.T) {
	// testdata was made with
	//   openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048
	//   openssl pkeyutl -encrypt -pkeyopt rsa_padding_mode:oaep \
	//     -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
	// over the NIST CBC-AES256 key; the private key is for this test only.
	pemBytes := readTestdata(t, "oaep-test-key.pem")
	block, _ := pem.Decode([]byte(pemBytes))
	if block == nil {
		t.Fatal("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	priv := k.(*rsa.PrivateKey)

	got, err := UnwrapKey(priv, readTestdata(t, "oaep-wrapped-key.b64"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"; !bytes.Equal(got, mustHex(t, want)) {
		t.Errorf("UnwrapKey = %x, want %s", got, want)
	}

	pub, err := ParsePublicKey(readTestdata(t, "oaep-test-key.pub.b64"))
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(&priv.PublicKey) {
		t.Error("ParsePublicKey of openssl's SPKI differs from the private key's public half")
	}
}

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestUnwrapKeyErrors(t *testing.T) {
	priv := testPrivateKey(t)
	other, err := rsa.GenerateKey(rand.Reader, 1024) // any other key will do; small is fast
	if err != nil {
		t.Fatal(err)
	}
	key, _ := NewKey()
	wrapped, err := WrapKey(&priv.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := base64.StdEncoding.DecodeString(wrapped)
	tampered := bytes.Clone(ct)
	tampered[len(tampered)/2] ^= 1

	tests := []struct {
		name    string
		priv    *rsa.PrivateKey
		wrapped string
		want    error
	}{
		{"bad base64", priv, "not base64!", ErrBase64},
		{"url-safe base64", priv, strings.NewReplacer("+", "-", "/", "_").Replace(wrapped) + "-_", ErrBase64},
		{"tampered", priv, base64.StdEncoding.EncodeToString(tampered), ErrUnwrap},
		{"truncated", priv, base64.StdEncoding.EncodeToString(ct[:100]), ErrUnwrap},
		{"too long", priv, base64.StdEncoding.EncodeToString(append(ct, 0)), ErrUnwrap},
		{"empty", priv, "", ErrUnwrap},
		{"nil key", nil, wrapped, ErrUnwrap},
	}
	var oaepMsg string
	for _, tt := range tests {
		got, err := UnwrapKey(tt.priv, tt.wrapped)
		if !errors.Is(err, tt.want) || got != nil {
			t.Errorf("%s: UnwrapKey = %x, %v; want %v", tt.name, got, err, tt.want)
			continue
		}
		if tt.want == ErrUnwrap && tt.priv != nil {
			if !errors.Is(err, rsa.ErrDecryption) {
				t.Errorf("%s: %v does not wrap rsa.ErrDecryption", tt.name, err)
			}
			// Every OAEP failure must read the same.
			if oaepMsg == "" {
				oaepMsg = err.Error()
			} else if err.Error() != oaepMsg {
				t.Errorf("%s: error %q differs from %q", tt.name, err, oaepMsg)
			}
		}
	}

	// The right ciphertext under the wrong key fails the same way too.
	otherWrapped, err := WrapKey(&other.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnwrapKey(priv, otherWrapped); !errors.Is(err, ErrUnwrap) || err.Error() != oaepMsg {
		t.Errorf("wrong private key: %v", err)
	}
}

func TestWrapKeyErrors(t *testing.T) {
	priv := testPrivateKey(t)
	if _, err := WrapKey(nil, make([]byte, KeySize)); !errors.Is(err, ErrPublicKey) {
		t.Errorf("nil key: %v, want ErrPublicKey", err)
	}
	if _, err := WrapKey(&priv.PublicKey, make([]byte, 300)); !errors.Is(err, rsa.ErrMessageTooLong) {
		t.Errorf("300-byte message: %v, want rsa.ErrMessageTooLong", err)
	}
}

func TestPublicKeyRoundTrip(t *testing.T) {
	pub := &testPrivateKey(t).PublicKey
	s, err := EncodePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := x509.ParsePKIXPublicKey(der); err != nil || !pub.Equal(k) {
		t.Errorf("EncodePublicKey is not base64 DER SPKI of the key: %v", err)
	}
	got, err := ParsePublicKey(s)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(pub) {
		t.Error("ParsePublicKey(EncodePublicKey(k)) != k")
	}
	if _, err := EncodePublicKey(nil); !errors.Is(err, ErrPublicKey) {
		t.Errorf("EncodePublicKey(nil) = %v, want ErrPublicKey", err)
	}
}

func TestParsePublicKeyRejects(t *testing.T) {
	priv := testPrivateKey(t)
	spki, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecSPKI, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallSPKI, err := x509.MarshalPKIXPublicKey(&small.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString

	tests := []struct {
		name, in string
		want     error
	}{
		{"empty", "", ErrPublicKey},
		{"not base64", "MIIB***", ErrBase64},
		{"PEM armour", "-----BEGIN PUBLIC KEY-----\n" + b64(spki) + "\n-----END PUBLIC KEY-----", ErrBase64},
		{"garbage DER", b64([]byte("hello, KSeF")), ErrPublicKey},
		{"truncated SPKI", b64(spki[:len(spki)-10]), ErrPublicKey},
		{"SPKI with trailing data", b64(append(bytes.Clone(spki), 0)), ErrPublicKey},
		{"PKCS#1, not SPKI", b64(x509.MarshalPKCS1PublicKey(&priv.PublicKey)), ErrPublicKey},
		{"EC key", b64(ecSPKI), ErrPublicKey},
		{"1024-bit RSA", b64(smallSPKI), ErrPublicKey},
	}
	for _, tt := range tests {
		if got, err := ParsePublicKey(tt.in); !errors.Is(err, tt.want) || got != nil {
			t.Errorf("%s: ParsePublicKey = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
}

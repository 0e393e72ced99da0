package crypto

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestNewSessionKey(t *testing.T) {
	a, err := NewSessionKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSessionKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Key) != KeySize || len(a.IV) != IVSize {
		t.Fatalf("key %d bytes, IV %d bytes", len(a.Key), len(a.IV))
	}
	if bytes.Equal(a.Key, b.Key) || bytes.Equal(a.IV, b.IV) {
		t.Error("two session keys are equal")
	}
	if bytes.Equal(a.Key, make([]byte, KeySize)) {
		t.Error("key is all zeros")
	}

	// Ciphers keep their own copy, so zeroing after creating a stream is safe.
	var ct bytes.Buffer
	w, err := EncryptWriter(&ct, a.Key, a.IV)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Encrypt([]byte("faktura"), a.Key, a.IV)
	if err != nil {
		t.Fatal(err)
	}
	a.Zero()
	if !bytes.Equal(a.Key, make([]byte, KeySize)) || !bytes.Equal(a.IV, make([]byte, IVSize)) {
		t.Errorf("Zero left %x %x", a.Key, a.IV)
	}
	w.Write([]byte("faktura"))
	w.Close()
	if !bytes.Equal(ct.Bytes(), want) {
		t.Error("zeroing the key changed a stream created before")
	}
	(*SessionKey)(nil).Zero() // must not panic
}

func TestSessionKeyRedacted(t *testing.T) {
	k, err := NewSessionKey()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	logger.Info("session", "key", k, "value", *k)
	jsonPtr, _ := json.Marshal(struct{ K *SessionKey }{k})
	jsonVal, _ := json.Marshal(struct{ K SessionKey }{*k})

	outputs := []string{logs.String(), string(jsonPtr), string(jsonVal)}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%08b"} {
		outputs = append(outputs, fmt.Sprintf(verb, k), fmt.Sprintf(verb, *k))
	}
	outputs = append(outputs, fmt.Sprint(k), fmt.Sprintln(*k), fmt.Errorf("open: %v", k).Error())

	// Every rendering of the key and IV bytes that could show up.
	var secrets []string
	for _, b := range [][]byte{k.Key, k.IV} {
		secrets = append(secrets,
			hex.EncodeToString(b[:8]), strings.ToUpper(hex.EncodeToString(b[:8])),
			base64.StdEncoding.EncodeToString(b)[:12],
			strings.Trim(fmt.Sprint(b[:4]), "[]"), fmt.Sprintf("%#v", b[:4]))
	}
	for _, out := range outputs {
		if !strings.Contains(out, "redacted") {
			t.Errorf("output %q does not say redacted", out)
		}
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("output %q contains key material %q", out, s)
			}
		}
	}
}

func TestDecodeBase64(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" with ok=false: error
		ok   bool
	}{
		{"", "", true},
		{"YWJj", "abc", true},
		{"YWI=", "ab", true},
		{"YWI", "", false},      // missing padding
		{"YW-_", "", false},     // URL alphabet
		{"YWJj!", "", false},    // junk
		{"YWJj\n", "abc", true}, // std encoding skips newlines
	}
	for _, tt := range tests {
		got, err := DecodeBase64(tt.in)
		if tt.ok && (err != nil || string(got) != tt.want) {
			t.Errorf("DecodeBase64(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if !tt.ok && !errors.Is(err, ErrBase64) {
			t.Errorf("DecodeBase64(%q) = %q, %v; want ErrBase64", tt.in, got, err)
		}
	}
}

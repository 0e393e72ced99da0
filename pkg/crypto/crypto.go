package crypto

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// Sizes of the AES-256-CBC session parameters, in bytes.
const (
	KeySize   = 32 // AES-256
	IVSize    = 16 // one AES block
	blockSize = 16
)

// Sentinel errors. Functions wrap them with detail that never includes key
// material; test with [errors.Is].
var (
	ErrKeyLength        = errors.New("kcrypto: AES key must be 32 bytes")
	ErrIVLength         = errors.New("kcrypto: IV must be 16 bytes")
	ErrPadding          = errors.New("kcrypto: invalid PKCS#7 padding")
	ErrCiphertextLength = errors.New("kcrypto: ciphertext length is not a positive multiple of 16")
	ErrBase64           = errors.New("kcrypto: invalid base64")
	ErrPublicKey        = errors.New("kcrypto: invalid RSA public key")
	// ErrUnwrap reports that a wrapped key could not be decrypted. It
	// deliberately carries no reason (see [UnwrapKey]).
	ErrUnwrap = errors.New("kcrypto: cannot unwrap key")
	// ErrClosed reports a write to an encrypting writer after Close.
	ErrClosed = errors.New("kcrypto: write after close")
)

// NewKey returns a fresh random AES-256 key from crypto/rand.
func NewKey() ([]byte, error) { return random(KeySize) }

// NewIV returns a fresh random 16-byte CBC initialisation vector.
func NewIV() ([]byte, error) { return random(IVSize) }

func random(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		return nil, fmt.Errorf("kcrypto: reading randomness: %w", err)
	}
	return b, nil
}

// SessionKey is the symmetric key and IV of one KSeF session.
//
// It formats, logs and marshals (as a value or a pointer) as "SessionKey(redacted)" so that it cannot
// leak through fmt, log/slog or encoders that honour
// [encoding.TextMarshaler]; the raw bytes are reachable only through the
// fields.
type SessionKey struct {
	Key []byte // KeySize bytes
	IV  []byte // IVSize bytes
}

const redacted = "SessionKey(redacted)"

// NewSessionKey returns a random key and IV.
func NewSessionKey() (*SessionKey, error) {
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	iv, err := NewIV()
	if err != nil {
		return nil, err
	}
	return &SessionKey{Key: key, IV: iv}, nil
}

// Zero overwrites the key and IV with zeros. Call it when the session ends.
// Ciphers already created from the key keep working: they hold their own
// expanded copy.
func (k *SessionKey) Zero() {
	if k == nil {
		return
	}
	clear(k.Key)
	clear(k.IV)
}

// String returns "SessionKey(redacted)".
func (SessionKey) String() string { return redacted }

// GoString returns "SessionKey(redacted)", also for %#v.
func (SessionKey) GoString() string { return redacted }

// Format prints "SessionKey(redacted)" for every verb, including %x and %d,
// which would otherwise dump the fields.
func (SessionKey) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// LogValue keeps the key out of log/slog output.
func (SessionKey) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText keeps the key out of JSON and other text encodings.
func (SessionKey) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// DecodeBase64 decodes standard (padded) base64, the encoding KSeF uses for
// keys, IVs and hashes. Errors wrap [ErrBase64].
func DecodeBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// base64.CorruptInputError is only an offset: safe to show.
		return nil, fmt.Errorf("%w: %w", ErrBase64, err)
	}
	return b, nil
}

func checkKeyIV(key, iv []byte) error {
	if len(key) != KeySize {
		return fmt.Errorf("%w, got %d", ErrKeyLength, len(key))
	}
	if len(iv) != IVSize {
		return fmt.Errorf("%w, got %d", ErrIVLength, len(iv))
	}
	return nil
}

package storage

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"iter"
	"strings"
	"time"
	"unicode/utf8"
)

// Store is an object store: S3-compatible ([NewS3]) or a local directory
// ([NewLocal]). Both behave alike; the shared test suite checks it.
type Store interface {
	// EnsureBuckets creates the buckets that do not exist yet.
	EnsureBuckets(ctx context.Context, buckets ...string) error
	// Put stores r under bucket/key, replacing any object there. size is
	// the length of r, or -1 when unknown (the stream is uploaded in parts
	// with bounded memory). The SHA-256 of the bytes is computed while
	// streaming, stored as metadata and returned.
	Put(ctx context.Context, bucket, key string, r io.Reader, size int64, meta ObjectMeta) (ObjectInfo, error)
	// Get opens an object; the caller closes the reader.
	Get(ctx context.Context, bucket, key string) (io.ReadCloser, ObjectInfo, error)
	// Stat returns an object's information.
	Stat(ctx context.Context, bucket, key string) (ObjectInfo, error)
	// Delete removes an object; a missing object is not an error.
	Delete(ctx context.Context, bucket, key string) error
	// List yields the objects whose keys start with prefix, in key order.
	// Listed ObjectInfo carry Bucket, Key, Size and LastModified only; use
	// Stat for the rest.
	List(ctx context.Context, bucket, prefix string) iter.Seq2[ObjectInfo, error]
}

// ObjectMeta is what the caller says about an object it stores.
type ObjectMeta struct {
	ContentType string
	// Metadata is stored with the object (S3 user metadata). Keys are
	// lower-case letters, digits and '-' (e.g. "invoice-id",
	// "ksef-number"); "sha256" is reserved. Values are any UTF-8.
	Metadata map[string]string
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Bucket       string
	Key          string
	Size         int64
	SHA256       string // standard base64; empty for objects stored by others
	ContentType  string
	Metadata     map[string]string
	LastModified time.Time
}

// Errors. Callers branch with errors.Is; [IsTransient] tells errors worth
// retrying.
var (
	// ErrNotFound: the object (or its bucket) does not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrBucketNotFound wraps ErrNotFound for a missing bucket.
	ErrBucketNotFound = fmt.Errorf("%w: bucket", ErrNotFound)
	// ErrInvalid: a bad bucket name, key or metadata; retrying cannot help.
	ErrInvalid = errors.New("storage: invalid argument")
	// ErrTransient marks errors that may go away: the server is down or
	// overloaded, the network failed.
	ErrTransient = errors.New("storage: transient error")
)

// IsTransient reports whether err may go away by itself, so the operation
// is worth retrying later (a worker snoozes or retries its message).
func IsTransient(err error) bool { return errors.Is(err, ErrTransient) }

// MetaSHA256 is the metadata key under which the digest is stored.
const MetaSHA256 = "sha256"

// MaxKeyLen is the longest key accepted (S3's limit).
const MaxKeyLen = 1024

// checkBucket applies the S3 bucket naming rules (3-63 characters, lower
// case letters, digits, '.', '-', starting and ending with a letter or
// digit).
func checkBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("%w: bucket name %q must be 3 to 63 characters", ErrInvalid, b)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (c != '.' && c != '-' || i == 0 || i == len(b)-1) {
			return fmt.Errorf("%w: bucket name %q", ErrInvalid, b)
		}
	}
	if strings.Contains(b, "..") {
		return fmt.Errorf("%w: bucket name %q", ErrInvalid, b)
	}
	return nil
}

// checkKey accepts keys both stores can hold: 1..MaxKeyLen bytes of UTF-8
// without control characters, '/'-separated segments none of which is
// empty, "." or "..". So no key escapes its bucket in the local store.
func checkKey(key string) error {
	if key == "" || len(key) > MaxKeyLen || !utf8.ValidString(key) {
		return fmt.Errorf("%w: key %q", ErrInvalid, key)
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: key %q has a control character", ErrInvalid, key)
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: key %q has an empty, . or .. segment", ErrInvalid, key)
		}
	}
	return nil
}

func checkObject(bucket, key string) error {
	if err := checkBucket(bucket); err != nil {
		return err
	}
	return checkKey(key)
}

// checkMeta validates metadata keys and bounds the total size (S3 allows
// 2 KiB of user metadata).
func checkMeta(m map[string]string) error {
	total := 0
	for k, v := range m {
		if k == "" || k == MetaSHA256 {
			return fmt.Errorf("%w: metadata key %q", ErrInvalid, k)
		}
		for i := 0; i < len(k); i++ {
			c := k[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%w: metadata key %q: use lower-case letters, digits and '-'", ErrInvalid, k)
			}
		}
		if !utf8.ValidString(v) {
			return fmt.Errorf("%w: metadata %s is not UTF-8", ErrInvalid, k)
		}
		total += len(k) + len(escapeMeta(v))
	}
	if total > 1800 {
		return fmt.Errorf("%w: metadata larger than 1800 bytes", ErrInvalid)
	}
	return nil
}

// hashingReader hashes what passes through it and counts it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func newHashingReader(r io.Reader) *hashingReader {
	return &hashingReader{r: r, h: sha256.New()}
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (h *hashingReader) sum() string { return base64.StdEncoding.EncodeToString(h.h.Sum(nil)) }

// escapeMeta makes a metadata value safe for an HTTP header: '%', '?' (no
// RFC 2047 "=?" word can form), and bytes outside printable ASCII become
// %XX.
func escapeMeta(v string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c > 0x7e || c == '%' || c == '?' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func unescapeMeta(v string) string {
	if !strings.Contains(v, "%") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '%' && i+2 < len(v) {
			if x, ok := unhex(v[i+1], v[i+2]); ok {
				b.WriteByte(x)
				i += 2
				continue
			}
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

func unhex(a, b byte) (byte, bool) {
	d := func(c byte) (byte, bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, true
		}
		return 0, false
	}
	x, ok1 := d(a)
	y, ok2 := d(b)
	return x<<4 | y, ok1 && ok2
}

func copyMeta(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

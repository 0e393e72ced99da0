package crypto

import (
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"io"
)

// SHA256Base64 returns the SHA-256 of b in standard base64, the form KSeF
// uses for invoice, part and package hashes.
func SHA256Base64(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// Digest accumulates the SHA-256 and the size of everything written to it,
// for the hash and size pairs KSeF asks for (invoiceHash/invoiceSize,
// partHash/partSize, batchHash/batchSize). Writes never fail. The zero
// value is an empty Digest ready to use.
type Digest struct {
	h hash.Hash
	n int64
}

// NewDigest returns an empty Digest.
func NewDigest() *Digest { return &Digest{h: sha256.New()} }

// Write adds p to the digest.
func (d *Digest) Write(p []byte) (int, error) {
	d.init()
	d.h.Write(p)
	d.n += int64(len(p))
	return len(p), nil
}

// Sum returns the SHA-256 of the bytes written so far in standard base64.
// It does not change the state: writing may continue.
func (d *Digest) Sum() string {
	d.init()
	var buf [sha256.Size]byte
	return base64.StdEncoding.EncodeToString(d.h.Sum(buf[:0]))
}

func (d *Digest) init() {
	if d.h == nil {
		d.h = sha256.New()
	}
}

// Size returns the number of bytes written so far.
func (d *Digest) Size() int64 { return d.n }

// DigestReader returns a reader that reads from r and a Digest of every
// byte read through it. Read the reader to EOF before using the Digest.
func DigestReader(r io.Reader) (io.Reader, *Digest) {
	d := NewDigest()
	return io.TeeReader(r, d), d
}

package downloader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
)

// partFile is one result part, decrypted into a temporary file: archive/zip needs an io.ReaderAt,
// and the part may be far larger than the memory a worker should use.
type partFile struct {
	f    *os.File
	size int64 // bytes of the decrypted ZIP

	// Ciphertext as received: its size (summed and checked against the query's packageSize)
	// and SHA-256.
	rawSize   int64
	rawSHA256 string
}

// Close removes the temporary file.
func (p *partFile) Close() error {
	name := p.f.Name()
	err := p.f.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	return err
}

// sink consumes the ciphertext of a part as it arrives (storing it); it must read r to EOF or
// return an error.
type sink func(ctx context.Context, r io.Reader) error

// fetchPart reads one encrypted part from body, hands the ciphertext to store as it arrives and
// decrypts it into a temporary file in dir, in one pass: memory stays at a few buffers whatever
// the part's size. On error nothing is left behind on disk; a partly stored ciphertext is
// overwritten by the next attempt (its key is deterministic).
func fetchPart(ctx context.Context, body io.Reader, key *kcrypto.SessionKey, dir string, store sink) (*partFile, error) {
	f, err := os.CreateTemp(dir, "ksef-part-*.zip")
	if err != nil {
		return nil, fmt.Errorf("downloader: temporary file: %w", err)
	}
	p := &partFile{f: f}
	ok := false
	defer func() {
		if !ok {
			p.Close()
		}
	}()

	pr, pipe := io.Pipe()
	pw := &recordingWriter{w: pipe}
	stored := make(chan error, 1)
	go func() {
		err := store(ctx, pr)
		cerr := err
		if cerr == nil {
			cerr = errStoppedEarly
		}
		// Unblocks the decrypting side if the store stopped reading before the end.
		pr.CloseWithError(cerr)
		stored <- err
	}()

	raw, digest := kcrypto.DigestReader(body)
	plain, err := kcrypto.DecryptReader(io.TeeReader(raw, pw), key.Key, key.IV)
	if err == nil {
		p.size, err = io.Copy(f, plain)
	}
	// On success the store reads EOF; on error it reads the error and fails, so that a part
	// that did not decrypt is never stored as complete.
	pipe.CloseWithError(err)
	serr := <-stored
	switch {
	case pw.err != nil:
		// The store stopped reading first: its error is the cause.
		if serr == nil {
			serr = errStoppedEarly
		}
		return nil, fmt.Errorf("downloader: storing the part: %w", serr)
	case err != nil:
		return nil, fmt.Errorf("downloader: reading the part: %w", err)
	case serr != nil:
		return nil, fmt.Errorf("downloader: storing the part: %w", serr)
	}
	p.rawSize, p.rawSHA256 = digest.Size(), digest.Sum()
	ok = true
	return p, nil
}

// errStoppedEarly: the store returned success without reading the part to its end.
var errStoppedEarly = errors.New("the store stopped reading before the end of the part")

// recordingWriter remembers the first write error, telling a failing reader from a failing
// store.
type recordingWriter struct {
	w   io.Writer
	err error
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}

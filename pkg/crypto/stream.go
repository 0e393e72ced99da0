package crypto

import (
	"crypto/cipher"
	"io"
)

// chunkSize is how much the streams encrypt or decrypt at a time; a
// multiple of the block size. Each stream holds two or fewer buffers of
// about this size, whatever the payload size.
const chunkSize = 32 << 10

// maxEmptyReads bounds consecutive (0, nil) reads from a source before a
// stream gives up with io.ErrNoProgress, as bufio does.
const maxEmptyReads = 100

// EncryptWriter returns a writer that encrypts what is written to it with
// AES-256-CBC and writes the ciphertext to dst in chunks. Close pads and
// writes the final block; it does not close dst. Without Close the
// ciphertext is incomplete.
//
// Key and IV are copied into the cipher: the caller may zero them as soon as
// EncryptWriter returns.
func EncryptWriter(dst io.Writer, key, iv []byte) (io.WriteCloser, error) {
	mode, err := newCBC(key, iv, cipher.NewCBCEncrypter)
	if err != nil {
		return nil, err
	}
	return &encWriter{dst: dst, mode: mode, buf: make([]byte, chunkSize)}, nil
}

type encWriter struct {
	dst    io.Writer
	mode   cipher.BlockMode
	buf    []byte // buf[:n] is plaintext not yet encrypted; n < len(buf) between calls
	n      int
	err    error // sticky write error from dst
	closed bool
}

func (w *encWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, ErrClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	written := 0
	for len(p) > 0 {
		if w.n == 0 && len(p) >= len(w.buf) {
			// A whole chunk is available: encrypt it from p, saving a copy.
			w.mode.CryptBlocks(w.buf, p[:len(w.buf)])
			if err := w.flush(len(w.buf)); err != nil {
				return written, err
			}
			written += len(w.buf)
			p = p[len(w.buf):]
			continue
		}
		c := copy(w.buf[w.n:], p)
		w.n += c
		p = p[c:]
		if w.n == len(w.buf) {
			w.mode.CryptBlocks(w.buf, w.buf)
			if err := w.flush(len(w.buf)); err != nil {
				return written, err
			}
		}
		written += c
	}
	return written, nil
}

func (w *encWriter) flush(n int) error {
	m, err := w.dst.Write(w.buf[:n])
	if err == nil && m < n {
		err = io.ErrShortWrite
	}
	w.n = 0
	w.err = err
	return err
}

// Close writes the final, padded block. It is safe to call more than once;
// later calls return the first call's result.
func (w *encWriter) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err == nil {
		// n < len(buf) and both are block multiples or less, so the padding fits.
		n := pad(w.buf, w.n)
		w.mode.CryptBlocks(w.buf[:n], w.buf[:n])
		w.flush(n)
	}
	clear(w.buf)
	return w.err
}

// EncryptReader returns a reader of the AES-256-CBC ciphertext of src, for
// pull-based consumers such as HTTP request bodies. The padded final block
// is produced when src reports io.EOF; other errors from src are returned
// unchanged. The ciphertext size is [EncryptedSize] of the plaintext size.
//
// Key and IV are copied into the cipher: the caller may zero them as soon as
// EncryptReader returns.
func EncryptReader(src io.Reader, key, iv []byte) (io.Reader, error) {
	mode, err := newCBC(key, iv, cipher.NewCBCEncrypter)
	if err != nil {
		return nil, err
	}
	return &encReader{stream: newStream(src, mode)}, nil
}

// DecryptReader returns a reader of the plaintext of the AES-256-CBC
// ciphertext read from src. It holds back the last block until src reports
// io.EOF, then checks and strips the padding. A ciphertext that is empty or
// not block-aligned yields an error wrapping [ErrCiphertextLength]; bad
// padding (usually a wrong key) yields [ErrPadding]. Both are detected only
// at the end of the stream, so on error the caller must discard whatever
// plaintext it has already read. Other errors from src are returned
// unchanged.
//
// Key and IV are copied into the cipher: the caller may zero them as soon as
// DecryptReader returns.
func DecryptReader(src io.Reader, key, iv []byte) (io.Reader, error) {
	mode, err := newCBC(key, iv, cipher.NewCBCDecrypter)
	if err != nil {
		return nil, err
	}
	return &decReader{stream: newStream(src, mode)}, nil
}

// stream is the state shared by the two readers.
type stream struct {
	src     io.Reader
	mode    cipher.BlockMode
	in      []byte // in[:n] is input not yet transformed
	n       int
	out     []byte // backing store of pending
	pending []byte // transformed, not yet returned to the caller
	total   int64  // bytes read from src
	err     error  // io.EOF once finished, or the error that ended the stream
}

func newStream(src io.Reader, mode cipher.BlockMode) stream {
	// One block of slack: held-back input or padding on top of a full chunk.
	return stream{
		src:  src,
		mode: mode,
		in:   make([]byte, chunkSize+blockSize),
		out:  make([]byte, chunkSize+blockSize),
	}
}

// read serves p from pending, calling fill until there is something to
// serve or the stream has ended.
func (s *stream) read(p []byte, fill func()) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for empty := 0; len(s.pending) == 0; {
		if s.err != nil {
			return 0, s.err
		}
		if empty == maxEmptyReads {
			s.err = io.ErrNoProgress
			return 0, s.err
		}
		before := s.total
		fill()
		if s.total == before {
			empty++
		} else {
			empty = 0
		}
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

// readSrc reads once from src into in[n:limit].
func (s *stream) readSrc(limit int) error {
	m, err := s.src.Read(s.in[s.n:limit])
	s.n += m
	s.total += int64(m)
	return err
}

// transform runs the cipher over in[:k], makes the result pending and moves
// the rest of the input to the front of in.
func (s *stream) transform(k int) {
	s.mode.CryptBlocks(s.out[:k], s.in[:k])
	s.pending = s.out[:k]
	s.n = copy(s.in, s.in[k:s.n])
}

type encReader struct{ stream }

func (r *encReader) Read(p []byte) (int, error) { return r.read(p, r.fill) }

func (r *encReader) fill() {
	// Between fills n < blockSize, so a read of up to chunkSize leaves room
	// in the slack for a full block of padding.
	err := r.readSrc(chunkSize)
	switch {
	case err == io.EOF:
		r.n = pad(r.in, r.n)
		r.transform(r.n)
		clear(r.in)
		r.err = io.EOF
	case err != nil:
		clear(r.in)
		r.err = err
	default:
		if full := r.n - r.n%blockSize; full > 0 {
			r.transform(full)
		}
	}
}

type decReader struct{ stream }

func (r *decReader) Read(p []byte) (int, error) { return r.read(p, r.fill) }

func (r *decReader) fill() {
	// Between fills n <= blockSize, so reading to the end of in takes at
	// most chunkSize more.
	err := r.readSrc(len(r.in))
	switch {
	case err == io.EOF:
		// Whole blocks have been decrypted and n >= 1 was held back whenever
		// anything was, so n%16 == total%16 and n == 0 only if total == 0.
		if err := checkCiphertextLength(r.total); err != nil {
			r.err = err
			return
		}
		r.transform(r.n)
		k, err := unpad(r.pending)
		if err != nil {
			clear(r.pending)
			r.pending = nil
			r.err = err
			return
		}
		r.pending = r.pending[:k]
		r.err = io.EOF
	case err != nil:
		r.err = err
	default:
		// Decrypt whole blocks but hold back 1..16 bytes: until EOF any
		// block could be the last one, whose padding must be stripped.
		if r.n > blockSize {
			r.transform((r.n - 1) / blockSize * blockSize)
		}
	}
}

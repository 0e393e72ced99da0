package crypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"io"
	"math/rand/v2"
	"testing"
)

// testRand is a deterministic source for test data (never for keys in
// production code).
func testRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

func testBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	testRand(seed).Read(b)
	return b
}

func testKeyIV(seed uint64) (key, iv []byte) {
	b := testBytes(seed, KeySize+IVSize)
	return b[:KeySize], b[KeySize:]
}

// refPad is PKCS#7 padding written the obvious way.
func refPad(b []byte) []byte {
	p := 16 - len(b)%16
	return append(bytes.Clone(b), bytes.Repeat([]byte{byte(p)}, p)...)
}

// refUnpad is PKCS#7 unpadding written the obvious way.
func refUnpad(b []byte) (int, bool) {
	if len(b) == 0 || len(b)%16 != 0 {
		return 0, false
	}
	p := int(b[len(b)-1])
	if p < 1 || p > 16 {
		return 0, false
	}
	for _, c := range b[len(b)-p:] {
		if int(c) != p {
			return 0, false
		}
	}
	return len(b) - p, true
}

// refCBC runs crypto/cipher CBC in one shot over block-aligned data.
func refCBC(t testing.TB, encrypt bool, key, iv, data []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(data))
	if encrypt {
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, data)
	} else {
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, data)
	}
	return out
}

// chunkReader returns data in reads of the sizes in sizes, cyclically. A
// size of 0 is a (0, nil) read. With eofWithData the last read returns its
// bytes together with io.EOF.
type chunkReader struct {
	data        []byte
	sizes       []int
	i           int
	eofWithData bool
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(r.sizes) > 0 {
		n = r.sizes[r.i%len(r.sizes)]
		r.i++
	}
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	if len(r.data) == 0 && r.eofWithData {
		return n, io.EOF
	}
	return n, nil
}

// writeChunks writes data to w in writes of the sizes in sizes, cyclically.
func writeChunks(w io.Writer, data []byte, sizes []int) error {
	for i := 0; len(data) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(data))
		m, err := w.Write(data[:n])
		if err != nil {
			return err
		}
		if m != n {
			return io.ErrShortWrite
		}
		data = data[n:]
	}
	return nil
}

// readAllSmall reads r to EOF with a buffer of bufSize bytes.
func readAllSmall(r io.Reader, bufSize int) ([]byte, error) {
	var out []byte
	buf := make([]byte, bufSize)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

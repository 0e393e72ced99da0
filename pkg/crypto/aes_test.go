package crypto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

var roundTripSizes = []int{0, 1, 15, 16, 17, 31, 32, 33, chunkSize - 1, chunkSize, chunkSize + 1, 1 << 20}

// readerWraps are the source chunkings the streams must handle.
var readerWraps = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"plain", func(r io.Reader) io.Reader { return r }},
	{"OneByte", iotest.OneByteReader},
	{"Half", iotest.HalfReader},
	{"DataErr", iotest.DataErrReader},
	{"odd", func(r io.Reader) io.Reader {
		b, _ := io.ReadAll(r)
		return &chunkReader{data: b, sizes: []int{7, 0, 1, 33, 4099, 16, 0, 0, 250}}
	}},
}

func TestEncryptMatchesOpenSSL(t *testing.T) {
	// openssl enc -aes-256-cbc -K <key> -iv <iv>, PKCS#7 padding by default.
	key := mustHex(t, "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
	iv := mustHex(t, "000102030405060708090a0b0c0d0e0f")
	tests := []struct{ plain, cipher string }{
		{"", "7e9248e5d829ca7593f0c549db2f5b8c"},
		{"Faktura VAT FA(3)", "79b329f3b01ff2808dfbea67afbf32aaa0cc08d62f9e82fd03192513c4b92653"},
		{"0123456789abcdef", "af7982f678f498be053f0ec06bc547caf81dab9022f1009991cdf5a02a864a5d"},
	}
	for _, tt := range tests {
		got, err := Encrypt([]byte(tt.plain), key, iv)
		if err != nil {
			t.Fatal(err)
		}
		if h := hex.EncodeToString(got); h != tt.cipher {
			t.Errorf("Encrypt(%q) = %s, want %s", tt.plain, h, tt.cipher)
		}
		plain, err := Decrypt(mustHex(t, tt.cipher), key, iv)
		if err != nil || string(plain) != tt.plain {
			t.Errorf("Decrypt(%s) = %q, %v; want %q", tt.cipher, plain, err, tt.plain)
		}
	}
	// NIST SP 800-38A F.2.5, CBC-AES256 first block: the padding block follows.
	got, err := Encrypt(mustHex(t, "6bc1bee22e409f96e93d7e117393172a"), key, iv)
	if err != nil {
		t.Fatal(err)
	}
	if h := hex.EncodeToString(got[:16]); h != "f58c4c04d6e5f1ba779eabfb5f7bfbd6" {
		t.Errorf("NIST block = %s", h)
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	key, iv := testKeyIV(1)
	for _, size := range roundTripSizes {
		plain := testBytes(uint64(size), size)
		want := refCBC(t, true, key, iv, refPad(plain))
		if got := EncryptedSize(int64(size)); got != int64(len(want)) {
			t.Errorf("EncryptedSize(%d) = %d, want %d", size, got, len(want))
		}

		got, err := Encrypt(plain, key, iv)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("size %d: Encrypt differs from crypto/cipher CBC (err %v)", size, err)
		}
		dec, err := Decrypt(want, key, iv)
		if err != nil || !bytes.Equal(dec, plain) {
			t.Errorf("size %d: Decrypt failed to round trip (err %v)", size, err)
		}

		for _, sizes := range [][]int{{1}, {7, 16, 1, 33}, {chunkSize + 5}, {1 << 21}} {
			var buf bytes.Buffer
			w, err := EncryptWriter(&buf, key, iv)
			if err != nil {
				t.Fatal(err)
			}
			if err := writeChunks(w, plain, sizes); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("size %d, writes %v: EncryptWriter differs from crypto/cipher CBC", size, sizes)
			}
		}

		for _, rw := range readerWraps {
			for _, bufSize := range []int{1, 5, 16, 4096, 100 << 10} {
				if size >= 1<<20 && bufSize < 16 && rw.name != "plain" {
					continue // a million one-byte reads twice over adds nothing
				}
				r, err := EncryptReader(rw.wrap(bytes.NewReader(plain)), key, iv)
				if err != nil {
					t.Fatal(err)
				}
				got, err := readAllSmall(r, bufSize)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("size %d, %s source, %d-byte reads: EncryptReader differs (err %v)", size, rw.name, bufSize, err)
				}

				r, err = DecryptReader(rw.wrap(bytes.NewReader(want)), key, iv)
				if err != nil {
					t.Fatal(err)
				}
				got, err = readAllSmall(r, bufSize)
				if err != nil || !bytes.Equal(got, plain) {
					t.Errorf("size %d, %s source, %d-byte reads: DecryptReader failed to round trip (err %v)", size, rw.name, bufSize, err)
				}
			}
		}
	}
}

func TestStreamsWithIOTest(t *testing.T) {
	key, iv := testKeyIV(2)
	for _, size := range []int{0, 1, 17, 70000} {
		plain := testBytes(uint64(size), size)
		ct := refCBC(t, true, key, iv, refPad(plain))

		r, err := DecryptReader(iotest.HalfReader(bytes.NewReader(ct)), key, iv)
		if err != nil {
			t.Fatal(err)
		}
		if err := iotest.TestReader(r, plain); err != nil {
			t.Errorf("size %d: DecryptReader: %v", size, err)
		}
		r, err = EncryptReader(iotest.OneByteReader(bytes.NewReader(plain)), key, iv)
		if err != nil {
			t.Fatal(err)
		}
		if err := iotest.TestReader(r, ct); err != nil {
			t.Errorf("size %d: EncryptReader: %v", size, err)
		}
	}
}

func TestKeyAndIVLength(t *testing.T) {
	key, iv := testKeyIV(3)
	tests := []struct {
		key, iv []byte
		want    error
	}{
		{nil, iv, ErrKeyLength},
		{key[:16], iv, ErrKeyLength}, // AES-128 is not allowed
		{key[:24], iv, ErrKeyLength},
		{key[:31], iv, ErrKeyLength},
		{append(bytes.Clone(key), 0), iv, ErrKeyLength},
		{key, nil, ErrIVLength},
		{key, iv[:15], ErrIVLength},
		{key, append(bytes.Clone(iv), 0), ErrIVLength},
	}
	ct, err := Encrypt([]byte("x"), key, iv)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		ops := map[string]func() error{
			"Encrypt":       func() error { _, err := Encrypt([]byte("x"), tt.key, tt.iv); return err },
			"Decrypt":       func() error { _, err := Decrypt(ct, tt.key, tt.iv); return err },
			"EncryptWriter": func() error { _, err := EncryptWriter(io.Discard, tt.key, tt.iv); return err },
			"EncryptReader": func() error { _, err := EncryptReader(bytes.NewReader(nil), tt.key, tt.iv); return err },
			"DecryptReader": func() error { _, err := DecryptReader(bytes.NewReader(ct), tt.key, tt.iv); return err },
		}
		for name, op := range ops {
			if err := op(); !errors.Is(err, tt.want) {
				t.Errorf("%s(key %d bytes, iv %d bytes) = %v, want %v", name, len(tt.key), len(tt.iv), err, tt.want)
			}
		}
	}
}

// decryptBoth decrypts with Decrypt and with DecryptReader over several
// chunkings and checks that they agree.
func decryptBoth(t *testing.T, ct, key, iv []byte) ([]byte, error) {
	t.Helper()
	plain, err := Decrypt(ct, key, iv)
	for _, rw := range readerWraps {
		r, rerr := DecryptReader(rw.wrap(bytes.NewReader(ct)), key, iv)
		if rerr != nil {
			t.Fatal(rerr)
		}
		got, rerr := io.ReadAll(r)
		if !sameFailure(err, rerr) {
			t.Errorf("%s: DecryptReader error %v, Decrypt error %v", rw.name, rerr, err)
		}
		if err == nil && !bytes.Equal(got, plain) {
			t.Errorf("%s: DecryptReader and Decrypt disagree", rw.name)
		}
	}
	return plain, err
}

// sameFailure reports whether a and b are both nil or wrap the same
// decryption sentinel.
func sameFailure(a, b error) bool {
	for _, sentinel := range []error{ErrPadding, ErrCiphertextLength} {
		if errors.Is(a, sentinel) != errors.Is(b, sentinel) {
			return false
		}
	}
	return (a == nil) == (b == nil)
}

func TestDecryptCiphertextLength(t *testing.T) {
	key, iv := testKeyIV(4)
	ct := refCBC(t, true, key, iv, refPad(testBytes(4, 100))) // 112 bytes
	for _, n := range []int{0, 1, 15, 17, 31, 100, 111} {
		if _, err := decryptBoth(t, ct[:n], key, iv); !errors.Is(err, ErrCiphertextLength) {
			t.Errorf("%d-byte ciphertext: err = %v, want ErrCiphertextLength", n, err)
		}
	}
}

func TestDecryptBadPadding(t *testing.T) {
	key, iv := testKeyIV(5)
	body := testBytes(5, 32)
	tests := []struct {
		name string
		last string // hex of the final plaintext block, as the encryptor padded it
		ok   bool
	}{
		{"pad 1", "000102030405060708090a0b0c0d0e01", true},
		{"pad 16", "10101010101010101010101010101010", true},
		{"pad 0", "000102030405060708090a0b0c0d0e00", false},
		{"pad 17", "11111111111111111111111111111111", false},
		{"pad 255", "ffffffffffffffffffffffffffffffff", false},
		{"pad 2 mismatch", "000102030405060708090a0b0c0d0e02", false},
		{"pad 16 first byte wrong", "00101010101010101010101010101010", false},
		{"pad 8 middle byte wrong", "00010203040506070808080807080808", false},
	}
	for _, tt := range tests {
		for _, prefix := range [][]byte{nil, body} {
			plainPadded := append(bytes.Clone(prefix), mustHex(t, tt.last)...)
			ct := refCBC(t, true, key, iv, plainPadded)
			got, err := decryptBoth(t, ct, key, iv)
			if tt.ok {
				n, _ := refUnpad(plainPadded)
				if err != nil || !bytes.Equal(got, plainPadded[:n]) {
					t.Errorf("%s (%d blocks): got %x, %v", tt.name, len(ct)/16, got, err)
				}
			} else if !errors.Is(err, ErrPadding) {
				t.Errorf("%s (%d blocks): err = %v, want ErrPadding", tt.name, len(ct)/16, err)
			}
		}
	}
}

func TestDecryptCorruptedLastBlock(t *testing.T) {
	key, iv := testKeyIV(6)
	for _, size := range []int{0, 5, 16, 40, 70000} {
		plain := testBytes(uint64(size), size)
		ct, err := Encrypt(plain, key, iv)
		if err != nil {
			t.Fatal(err)
		}
		// In CBC the last plaintext block is D(C_last) XOR C_prev, so
		// flipping the top bit of C_prev's last byte (the IV's for a single
		// block) turns the pad value p into p^0x80 > 16: always invalid.
		badCT, badIV := bytes.Clone(ct), bytes.Clone(iv)
		if len(ct) == 16 {
			badIV[15] ^= 0x80
		} else {
			badCT[len(ct)-17] ^= 0x80
		}
		if _, err := decryptBoth(t, badCT, key, badIV); !errors.Is(err, ErrPadding) {
			t.Errorf("size %d: err = %v, want ErrPadding", size, err)
		}
	}
}

func TestDecryptWrongKey(t *testing.T) {
	key, iv := testKeyIV(7)
	plain := testBytes(7, 1000)
	ct, err := Encrypt(plain, key, iv)
	if err != nil {
		t.Fatal(err)
	}
	// A wrong key yields valid padding with probability about 1/200, so
	// count rather than demand ErrPadding every time.
	const trials = 200
	padErrs := 0
	for i := range trials {
		wrong, _ := testKeyIV(uint64(1000 + i))
		got, err := Decrypt(ct, wrong, iv)
		switch {
		case errors.Is(err, ErrPadding):
			padErrs++
		case err != nil:
			t.Fatalf("wrong key: unexpected error %v", err)
		case bytes.Equal(got, plain):
			t.Fatal("wrong key decrypted to the plaintext")
		}
	}
	if padErrs < trials*9/10 {
		t.Errorf("wrong key gave ErrPadding %d times in %d", padErrs, trials)
	}
}

func TestStreamSourceErrors(t *testing.T) {
	key, iv := testKeyIV(8)
	ct, err := Encrypt(testBytes(8, 100), key, iv)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	sources := map[string]func() io.Reader{
		"immediately": func() io.Reader { return iotest.ErrReader(boom) },
		"mid-stream":  func() io.Reader { return io.MultiReader(bytes.NewReader(ct[:48]), iotest.ErrReader(boom)) },
	}
	for name, src := range sources {
		er, _ := EncryptReader(src(), key, iv)
		dr, _ := DecryptReader(src(), key, iv)
		for kind, r := range map[string]io.Reader{"EncryptReader": er, "DecryptReader": dr} {
			if _, err := io.ReadAll(r); !errors.Is(err, boom) {
				t.Errorf("%s, error %s: err = %v, want boom", kind, name, err)
			}
			if _, err := r.Read(make([]byte, 10)); !errors.Is(err, boom) {
				t.Errorf("%s, error %s: read after error = %v, want boom again", kind, name, err)
			}
		}
	}
	// A source that never makes progress must not hang the readers.
	stuck := &chunkReader{data: ct, sizes: []int{0}}
	dr, _ := DecryptReader(stuck, key, iv)
	if _, err := io.ReadAll(dr); !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("stuck source: err = %v, want io.ErrNoProgress", err)
	}
}

// failWriter accepts limit bytes, then fails.
type failWriter struct {
	limit int
	err   error
	short bool // fail with a short write and no error instead
}

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) <= w.limit {
		w.limit -= len(p)
		return len(p), nil
	}
	n := w.limit
	w.limit = 0
	if w.short {
		return n, nil
	}
	return n, w.err
}

func TestEncryptWriterErrors(t *testing.T) {
	key, iv := testKeyIV(9)
	boom := errors.New("boom")
	plain := testBytes(9, 3*chunkSize)

	tests := []struct {
		name  string
		dst   *failWriter
		write int // bytes written before Close
		want  error
	}{
		{"fails on a full chunk", &failWriter{limit: chunkSize, err: boom}, len(plain), boom},
		{"fails on the final block", &failWriter{limit: 0, err: boom}, 10, boom},
		{"short write", &failWriter{limit: 100, short: true}, len(plain), io.ErrShortWrite},
	}
	for _, tt := range tests {
		w, err := EncryptWriter(tt.dst, key, iv)
		if err != nil {
			t.Fatal(err)
		}
		n, werr := w.Write(plain[:tt.write])
		cerr := w.Close()
		if !errors.Is(werr, tt.want) && !errors.Is(cerr, tt.want) {
			t.Errorf("%s: Write = %d, %v; Close = %v; want %v", tt.name, n, werr, cerr, tt.want)
		}
		if werr != nil && n >= tt.write {
			t.Errorf("%s: Write failed but reported all %d bytes written", tt.name, n)
		}
		if _, err := w.Write([]byte("x")); err == nil {
			t.Errorf("%s: Write after failure succeeded", tt.name)
		}
	}

	w, _ := EncryptWriter(io.Discard, key, iv)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
}

func TestEncryptedSize(t *testing.T) {
	tests := []struct{ in, want int64 }{
		{0, 16}, {1, 16}, {15, 16}, {16, 32}, {17, 32},
		{100 << 20, 100<<20 + 16}, // largest batch part before encryption
		{5_000_000_001, 5_000_000_016},
	}
	for _, tt := range tests {
		if got := EncryptedSize(tt.in); got != tt.want {
			t.Errorf("EncryptedSize(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("EncryptedSize(-1) did not panic")
		}
	}()
	EncryptedSize(-1)
}

func TestUnpad(t *testing.T) {
	tests := []struct {
		in   []byte
		want int // -1: ErrPadding
	}{
		{nil, -1},
		{bytes.Repeat([]byte{1}, 15), -1},
		{bytes.Repeat([]byte{1}, 16), 15},
		{bytes.Repeat([]byte{16}, 16), 0},
		{bytes.Repeat([]byte{16}, 32), 16},
		{bytes.Repeat([]byte{17}, 32), -1},
		{bytes.Repeat([]byte{0}, 16), -1},
		{append(bytes.Repeat([]byte{3}, 14), 2, 3), -1},
		{append(bytes.Repeat([]byte{9}, 13), 3, 3, 3), 13},
	}
	for _, tt := range tests {
		n, err := unpad(tt.in)
		switch {
		case tt.want < 0 && !errors.Is(err, ErrPadding):
			t.Errorf("unpad(%x) = %d, %v; want ErrPadding", tt.in, n, err)
		case tt.want >= 0 && (err != nil || n != tt.want):
			t.Errorf("unpad(%x) = %d, %v; want %d", tt.in, n, err, tt.want)
		}
	}
}

func FuzzUnpad(f *testing.F) {
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{16}, 16))
	f.Add(append(bytes.Repeat([]byte{0}, 15), 1))
	f.Add(append(bytes.Repeat([]byte{4}, 30), 2, 2))
	f.Add(bytes.Repeat([]byte{0xff}, 48))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := unpad(b)
		want, ok := refUnpad(b)
		if ok != (err == nil) || ok && n != want {
			t.Fatalf("unpad(%x) = %d, %v; reference says %d, %v", b, n, err, want, ok)
		}
		if err != nil && !errors.Is(err, ErrPadding) {
			t.Fatalf("unpad error %v is not ErrPadding", err)
		}
	})
}

func FuzzDecrypt(f *testing.F) {
	key, iv := testKeyIV(10)
	for _, size := range []int{0, 1, 16, 40} {
		ct, err := Encrypt(testBytes(uint64(size), size), key, iv)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ct, []byte{1, 7, 0, 33}, false)
		f.Add(ct[:len(ct)-1], []byte{16}, true)
	}
	f.Add([]byte{}, []byte{}, false)
	f.Add(bytes.Repeat([]byte{0x41}, 64), []byte{0, 0, 5}, true)
	f.Fuzz(func(t *testing.T, ct, chunks []byte, eofWithData bool) {
		plain, err := Decrypt(ct, key, iv)
		if err != nil && !errors.Is(err, ErrPadding) && !errors.Is(err, ErrCiphertextLength) {
			t.Fatalf("Decrypt: unexpected error %v", err)
		}

		// At most a few (0, nil) reads in a row: more is a stuck source.
		sizes := make([]int, 0, len(chunks))
		zeros := 0
		for _, c := range chunks {
			if c == 0 {
				if zeros++; zeros > 3 {
					continue
				}
			} else {
				zeros = 0
			}
			sizes = append(sizes, int(c))
		}
		if len(sizes) > 0 && sizes[len(sizes)-1] == 0 && sizes[0] == 0 {
			sizes = append(sizes, 1) // wrapping around must not chain zeros either
		}
		r, rerr := DecryptReader(&chunkReader{data: ct, sizes: sizes, eofWithData: eofWithData}, key, iv)
		if rerr != nil {
			t.Fatal(rerr)
		}
		got, rerr := io.ReadAll(r)
		if !sameFailure(err, rerr) {
			t.Fatalf("Decrypt error %v, DecryptReader error %v", err, rerr)
		}
		if err == nil && !bytes.Equal(got, plain) {
			t.Fatal("Decrypt and DecryptReader disagree")
		}
		if err != nil {
			return
		}
		again, err := Encrypt(plain, key, iv)
		if err != nil || !bytes.Equal(again, ct) {
			t.Fatalf("re-encryption differs: %x vs %x (%v)", again, ct, err)
		}
	})
}

package crypto

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestSHA256Base64(t *testing.T) {
	// Expected values from Python's hashlib and base64.
	tests := []struct {
		in   []byte
		want string
	}{
		{nil, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="},
		{[]byte("abc"), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="},
		{bytes.Repeat([]byte("a"), 1_000_000), "zcduXJkU+5KBocfihNc+Z/GAmkiklyAOBG05zMcRLNA="},
	}
	for _, tt := range tests {
		if got := SHA256Base64(tt.in); got != tt.want {
			t.Errorf("SHA256Base64(%d bytes) = %s, want %s", len(tt.in), got, tt.want)
		}
		for _, sizes := range [][]int{{1}, {3, 1000, 7}, {1 << 20}} {
			d := NewDigest()
			if err := writeChunks(d, tt.in, sizes); err != nil {
				t.Fatal(err)
			}
			if d.Sum() != tt.want || d.Size() != int64(len(tt.in)) {
				t.Errorf("Digest over %d bytes in writes %v = %s, %d", len(tt.in), sizes, d.Sum(), d.Size())
			}
		}
	}
}

func TestDigestSumIsNotFinal(t *testing.T) {
	var d Digest // the zero value works
	if got := d.Sum(); got != SHA256Base64(nil) {
		t.Errorf("empty Sum = %s", got)
	}
	io.WriteString(&d, "ab")
	if got := d.Sum(); got != SHA256Base64([]byte("ab")) {
		t.Errorf("Sum after ab = %s", got)
	}
	io.WriteString(&d, "c")
	if got := d.Sum(); got != SHA256Base64([]byte("abc")) || d.Size() != 3 {
		t.Errorf("Sum after abc = %s, size %d", got, d.Size())
	}
}

func TestDigestReader(t *testing.T) {
	data := testBytes(11, 100_003)
	r, d := DigestReader(iotest.HalfReader(bytes.NewReader(data)))
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("DigestReader altered the stream: %v", err)
	}
	if d.Sum() != SHA256Base64(data) || d.Size() != int64(len(data)) {
		t.Errorf("DigestReader digest = %s, %d; want %s, %d", d.Sum(), d.Size(), SHA256Base64(data), len(data))
	}

	// Only what was read is hashed.
	r, d = DigestReader(strings.NewReader("abcdef"))
	io.ReadFull(r, make([]byte, 3))
	if d.Sum() != SHA256Base64([]byte("abc")) || d.Size() != 3 {
		t.Errorf("partial read digest = %s, %d", d.Sum(), d.Size())
	}
}

package crypto

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

const benchSize = 1 << 20

func BenchmarkEncryptWriter(b *testing.B) {
	key, iv := testKeyIV(20)
	plain := testBytes(20, benchSize)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		w, err := EncryptWriter(io.Discard, key, iv)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(plain); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncryptReader(b *testing.B) {
	key, iv := testKeyIV(21)
	plain := testBytes(21, benchSize)
	src := bytes.NewReader(plain)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(plain)
		r, err := EncryptReader(src, key, iv)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptReader(b *testing.B) {
	key, iv := testKeyIV(22)
	ct, err := Encrypt(testBytes(22, benchSize), key, iv)
	if err != nil {
		b.Fatal(err)
	}
	src := bytes.NewReader(ct)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(ct)
		r, err := DecryptReader(src, key, iv)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSHA256Base64(b *testing.B) {
	for _, size := range []int{1 << 10, benchSize} {
		data := testBytes(23, size)
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				SHA256Base64(data)
			}
		})
	}
}

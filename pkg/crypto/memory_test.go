package crypto

import (
	"io"
	"runtime"
	"testing"
)

// TestStreamingConstantMemory streams 100 MB through both encrypt/decrypt
// pipelines and checks that the heap grows by a small constant, not with the
// payload. It bounds memory, not time.
func TestStreamingConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 200 MB")
	}
	const (
		size  = 100 << 20
		limit = 4 << 20
	)
	key, iv := testKeyIV(30)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	// Push: source -> EncryptWriter -> io.Pipe -> DecryptReader -> Digest.
	src, srcDigest := DigestReader(io.LimitReader(testRand(30), size))
	pr, pw := io.Pipe()
	go func() {
		w, err := EncryptWriter(pw, key, iv)
		if err == nil {
			_, err = io.Copy(w, src)
		}
		if err == nil {
			err = w.Close()
		}
		pw.CloseWithError(err)
	}()
	dr, err := DecryptReader(pr, key, iv)
	if err != nil {
		t.Fatal(err)
	}
	outDigest := NewDigest()
	if _, err := io.Copy(outDigest, dr); err != nil {
		t.Fatal(err)
	}

	// Pull: source -> EncryptReader -> DecryptReader -> Digest.
	src2, srcDigest2 := DigestReader(io.LimitReader(testRand(31), size))
	er, err := EncryptReader(src2, key, iv)
	if err != nil {
		t.Fatal(err)
	}
	ctCount := NewDigest()
	dr2, err := DecryptReader(io.TeeReader(er, ctCount), key, iv)
	if err != nil {
		t.Fatal(err)
	}
	outDigest2 := NewDigest()
	if _, err := io.Copy(outDigest2, dr2); err != nil {
		t.Fatal(err)
	}

	runtime.ReadMemStats(&after)

	for i, d := range [][2]*Digest{{srcDigest, outDigest}, {srcDigest2, outDigest2}} {
		if d[0].Size() != size || d[1].Size() != size || d[0].Sum() != d[1].Sum() {
			t.Errorf("pipeline %d: in %d bytes %s, out %d bytes %s", i, d[0].Size(), d[0].Sum(), d[1].Size(), d[1].Sum())
		}
	}
	if ctCount.Size() != EncryptedSize(size) {
		t.Errorf("EncryptReader produced %d bytes, want %d", ctCount.Size(), EncryptedSize(size))
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	grown := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("streamed 2 x %d MB: allocated %d KiB, heap in use grew %d KiB", size>>20, allocated>>10, grown>>10)
	if allocated > limit {
		t.Errorf("allocated %d bytes streaming 2 x %d bytes, want under %d", allocated, size, limit)
	}
	if grown > limit {
		t.Errorf("heap in use grew by %d bytes, want under %d", grown, limit)
	}
}

package storage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const partSize = 5 << 20 // the smallest S3 allows, to exercise multipart cheaply

// stores runs f against every implementation.
func stores(t *testing.T, f func(t *testing.T, s storage.Store, bucket string)) {
	t.Run("local", func(t *testing.T) {
		s, err := storage.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		f(t, s, "test-bucket")
	})
	t.Run("s3", func(t *testing.T) {
		endpoint, access, secret := testenv.MinIO(t)
		s, err := storage.NewS3(storage.S3Config{Endpoint: endpoint, AccessKey: access, SecretKey: secret, PartSize: partSize})
		if err != nil {
			t.Fatal(err)
		}
		// One bucket per test: the MinIO server is shared by the binary.
		bucket := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
		bucket = fmt.Sprintf("t%d-%s", time.Now().UnixNano()%1e6, bucket)
		if len(bucket) > 63 {
			bucket = strings.TrimRight(bucket[:63], "-")
		}
		f(t, s, bucket)
	})
}

func digest(b []byte) string {
	h := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(h[:])
}

func ensure(t *testing.T, s storage.Store, bucket string) {
	t.Helper()
	if err := s.EnsureBuckets(t.Context(), bucket); err != nil {
		t.Fatal(err)
	}
	// Idempotent.
	if err := s.EnsureBuckets(t.Context(), bucket); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, s storage.Store, bucket, key string) ([]byte, storage.ObjectInfo) {
	t.Helper()
	rc, info, err := s.Get(t.Context(), bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b, info
}

func TestPutGetStat(t *testing.T) {
	stores(t, func(t *testing.T, s storage.Store, bucket string) {
		ensure(t, s, bucket)
		body := []byte(`<?xml version="1.0"?><Faktura/>`)
		meta := storage.ObjectMeta{
			ContentType: "application/xml",
			Metadata: map[string]string{
				"invoice-id":  "FV/2026/03/ŁÓDŹ/1",
				"ksef-number": "5265877635-20260314-0100001AF629-AF",
				"odd":         "100% =?utf-8?q?x?= \t",
			},
		}
		key := "5265877635/sent/2026/03/14/FV%2F1.xml"
		put, err := s.Put(t.Context(), bucket, key, bytes.NewReader(body), int64(len(body)), meta)
		if err != nil {
			t.Fatal(err)
		}
		if put.SHA256 != digest(body) || put.Size != int64(len(body)) || put.Key != key || put.Bucket != bucket {
			t.Fatalf("put info %+v", put)
		}
		got, info := readAll(t, s, bucket, key)
		if !bytes.Equal(got, body) {
			t.Fatalf("read %q", got)
		}
		st, err := s.Stat(t.Context(), bucket, key)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range []storage.ObjectInfo{info, st} {
			if i.SHA256 != digest(body) || i.Size != int64(len(body)) || i.ContentType != "application/xml" || i.Key != key {
				t.Fatalf("info %+v", i)
			}
			for k, v := range meta.Metadata {
				if i.Metadata[k] != v {
					t.Fatalf("metadata %s = %q, want %q (all: %q)", k, i.Metadata[k], v, i.Metadata)
				}
			}
			if len(i.Metadata) != len(meta.Metadata) {
				t.Fatalf("metadata %q", i.Metadata)
			}
			if i.LastModified.IsZero() || time.Since(i.LastModified) > time.Hour {
				t.Fatalf("last modified %v", i.LastModified)
			}
		}
	})
}

func TestPutSizes(t *testing.T) {
	small := []byte("<Faktura/>")
	big := make([]byte, 2*partSize+12345)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	tests := []struct {
		name string
		data []byte
		size int64
	}{
		{"empty", nil, 0},
		{"empty unknown size", nil, -1},
		{"small known", small, int64(len(small))},
		{"small unknown", small, -1},
		{"exactly one part unknown", big[:partSize], -1},
		{"multipart known", big, int64(len(big))},
		{"multipart unknown", big, -1},
	}
	stores(t, func(t *testing.T, s storage.Store, bucket string) {
		ensure(t, s, bucket)
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				key := fmt.Sprintf("obj-%d", i)
				// A reader that is neither a bytes.Reader nor a ReaderAt.
				r := io.MultiReader(bytes.NewReader(tt.data))
				info, err := s.Put(t.Context(), bucket, key, r, tt.size, storage.ObjectMeta{ContentType: "application/zip"})
				if err != nil {
					t.Fatal(err)
				}
				if info.SHA256 != digest(tt.data) || info.Size != int64(len(tt.data)) {
					t.Fatalf("put: %+v", info)
				}
				got, st := readAll(t, s, bucket, key)
				if !bytes.Equal(got, tt.data) {
					t.Fatalf("read %d bytes, want %d", len(got), len(tt.data))
				}
				if st.SHA256 != digest(tt.data) || st.ContentType != "application/zip" {
					t.Fatalf("stat after put: %+v", st)
				}
			})
		}
	})
}

func TestPutSizeMismatch(t *testing.T) {
	stores(t, func(t *testing.T, s storage.Store, bucket string) {
		ensure(t, s, bucket)
		for _, size := range []int64{3, 100} {
			_, err := s.Put(t.Context(), bucket, "k", strings.NewReader("0123456789"), size, storage.ObjectMeta{})
			if !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("size %d: err = %v", size, err)
			}
		}
	})
}

func TestOverwrite(t *testing.T) {
	stores(t, func(t *testing.T, s storage.Store, bucket string) {
		ensure(t, s, bucket)
		put := func(body string, md map[string]string) {
			if _, err := s.Put(t.Context(), bucket, "a/b.xml", strings.NewReader(body), -1, storage.ObjectMeta{Metadata: md}); err != nil {
				t.Fatal(err)
			}
		}
		put("first", map[string]string{"invoice-id": "1", "old": "x"})
		put("second", map[string]string{"invoice-id": "2"})
		got, info := readAll(t, s, bucket, "a/b.xml")
		if string(got) != "second" || info.Metadata["invoice-id"] != "2" || info.Metadata["old"] != "" || info.SHA256 != digest([]byte("second")) {
			t.Fatalf("after overwrite %q %+v", got, info)
		}
	})
}

func TestNotFoundAndDelete(t *testing.T) {
	stores(t, func(t *testing.T, s storage.Store, bucket string) {
		ctx := t.Context()
		if _, err := s.Put(ctx, bucket, "k", strings.NewReader("x"), 1, storage.ObjectMeta{}); !errors.Is(err, storage.ErrBucketNotFound) {
			t.Fatalf("put to missing bucket: %v", err)
		}
		if _, err := s.Stat(ctx, bucket, "k"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("stat in missing bucket: %v", err)
		}
		ensure(t, s, bucket)
		if _, _, err := s.Get(ctx, bucket, "missing"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("get missing: %v", err)
		}
		if _, err := s.Stat(ctx, bucket, "missing"); !errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrBucketNotFound) {
			t.Fatalf("stat missing: %v", err)
		}
		if err := s.Delete(ctx, bucket, "missing"); err != nil {
			t.Fatalf("delete missing: %v", err)
		}
		if _, err := s.Put(ctx, bucket, "dir/k", strings.NewReader("x"), 1, storage.ObjectMeta{}); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, bucket, "dir/k"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(ctx, bucket, "dir/k"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("stat deleted: %v", err)
		}
		// The name of the former "directory" is free again.
		if _, err := s.Put(ctx, bucket, "dir", strings.NewReader("y"), 1, storage.ObjectMeta{}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestList(t *testing.T) {
	stores(t, func(t *testing.T, s storage.Store, bucket string) {
		ensure(t, s, bucket)
		keys := []string{"n1/b", "n1/a-c", "n1/a/b", "n1/a/c", "n2/x", "n10/y"}
		for _, k := range keys {
			if _, err := s.Put(t.Context(), bucket, k, strings.NewReader(k), -1, storage.ObjectMeta{}); err != nil {
				t.Fatal(err)
			}
		}
		list := func(prefix string) []string {
			var out []string
			for oi, err := range s.List(t.Context(), bucket, prefix) {
				if err != nil {
					t.Fatal(err)
				}
				if oi.Size != int64(len(oi.Key)) || oi.Bucket != bucket {
					t.Fatalf("listed %+v", oi)
				}
				out = append(out, oi.Key)
			}
			return out
		}
		tests := []struct {
			prefix string
			want   string
		}{
			{"", "n1/a-c n1/a/b n1/a/c n1/b n10/y n2/x"},
			{"n1/", "n1/a-c n1/a/b n1/a/c n1/b"},
			{"n1/a", "n1/a-c n1/a/b n1/a/c"},
			{"n1", "n1/a-c n1/a/b n1/a/c n1/b n10/y"},
			{"n1/a/c", "n1/a/c"},
			{"zz", ""},
		}
		for _, tt := range tests {
			if got := strings.Join(list(tt.prefix), " "); got != tt.want {
				t.Errorf("List(%q) = %s, want %s", tt.prefix, got, tt.want)
			}
		}
		// Stopping early is allowed.
		n := 0
		for range s.List(t.Context(), bucket, "") {
			n++
			break
		}
		if n != 1 {
			t.Fatal("break did not stop")
		}
		for _, err := range s.List(t.Context(), "no-such-bucket-here", "") {
			if !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("list missing bucket: %v", err)
			}
		}
	})
}

func TestInvalidNames(t *testing.T) {
	stores(t, func(t *testing.T, s storage.Store, bucket string) {
		ensure(t, s, bucket)
		for _, key := range []string{"", "/abs", "../escape", "a/../../escape", "a//b", "a/./b", "a/", "a\x00b", "a\nb", strings.Repeat("x", 1025)} {
			_, err := s.Put(t.Context(), bucket, key, strings.NewReader("x"), 1, storage.ObjectMeta{})
			if !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("key %q: err = %v", key, err)
			}
			if _, err := s.Stat(t.Context(), bucket, key); !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("stat key %q: err = %v", key, err)
			}
		}
		for _, b := range []string{"ab", "UPPER", "-lead", "trail-", "a..b", "under_score", "../x"} {
			if err := s.EnsureBuckets(t.Context(), b); !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("bucket %q: err = %v", b, err)
			}
		}
		for _, md := range []map[string]string{{"Invoice-Id": "x"}, {"sha256": "x"}, {"a b": "x"}, {"big": strings.Repeat("x", 2000)}} {
			if _, err := s.Put(t.Context(), bucket, "k", strings.NewReader("x"), 1, storage.ObjectMeta{Metadata: md}); !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("metadata %v: err = %v", md, err)
			}
		}
	})
}

func TestConcurrentPuts(t *testing.T) {
	stores(t, func(t *testing.T, s storage.Store, bucket string) {
		ensure(t, s, bucket)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := strings.Repeat(fmt.Sprint(i), 1000+i)
				if _, err := s.Put(t.Context(), bucket, "same", strings.NewReader(body), -1, storage.ObjectMeta{}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		got, info := readAll(t, s, bucket, "same")
		if info.SHA256 != digest(got) || info.Size != int64(len(got)) {
			t.Fatalf("data and metadata of different writers: size %d, info %+v", len(got), info)
		}
	})
}

func TestS3Unavailable(t *testing.T) {
	addr := closedPort(t)
	s, err := storage.NewS3(storage.S3Config{Endpoint: addr, AccessKey: "a", SecretKey: "b", MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = s.Put(ctx, "bucket", "k", strings.NewReader("x"), 1, storage.ObjectMeta{})
	if !storage.IsTransient(err) {
		t.Fatalf("server down: err = %v, want transient", err)
	}
	if _, err := s.Stat(ctx, "bucket", "k"); !storage.IsTransient(err) {
		t.Fatalf("stat: err = %v, want transient", err)
	}
	if storage.IsTransient(storage.ErrNotFound) || storage.IsTransient(storage.ErrInvalid) {
		t.Fatal("not found / invalid reported transient")
	}
}

func TestS3WrongCredentialsIsPermanent(t *testing.T) {
	endpoint, access, _ := testenv.MinIO(t)
	s, err := storage.NewS3(storage.S3Config{Endpoint: endpoint, AccessKey: access, SecretKey: "wrong-secret", MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	err = s.EnsureBuckets(t.Context(), "creds-test")
	if err == nil || storage.IsTransient(err) {
		t.Fatalf("err = %v, want a permanent error", err)
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("secret in error: %v", err)
	}
}

func TestLocalStaysInsideDir(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "store")
	s, err := storage.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	ensure(t, s, "bucket")
	if _, err := s.Put(t.Context(), "bucket", "a/b", strings.NewReader("x"), 1, storage.ObjectMeta{}); err != nil {
		t.Fatal(err)
	}
	// "a" is a directory of keys here; as an object it collides.
	if _, err := s.Put(t.Context(), "bucket", "a", strings.NewReader("x"), 1, storage.ObjectMeta{}); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("collision: %v", err)
	}
	if _, err := s.Put(t.Context(), "bucket", "a/b/c", strings.NewReader("x"), 1, storage.ObjectMeta{}); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("collision below a file: %v", err)
	}
	if _, err := s.Stat(t.Context(), "bucket", "a"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("stat of a directory: %v", err)
	}
	var files []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if strings.Join(files, " ") != "store/.meta/bucket/a/b store/bucket/a/b" {
		t.Fatalf("files on disk: %v (temporary files left or written outside)", files)
	}
}

func TestGetHonoursContext(t *testing.T) {
	stores(t, func(t *testing.T, s storage.Store, bucket string) {
		ensure(t, s, bucket)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := s.Put(ctx, bucket, "k", strings.NewReader("x"), 1, storage.ObjectMeta{}); err == nil {
			t.Fatal("put with a cancelled context succeeded")
		}
	})
}

func BenchmarkLocalPutSmall(b *testing.B) {
	s, err := storage.NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	if err := s.EnsureBuckets(b.Context(), "bench"); err != nil {
		b.Fatal(err)
	}
	body := bytes.Repeat([]byte("<Faktura/>"), 2000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Put(b.Context(), "bench", "k.xml", bytes.NewReader(body), -1, storage.ObjectMeta{}); err != nil {
			b.Fatal(err)
		}
	}
}

package storage_test

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
)

// TestWaitBucketsStorageComesUpLater points a store at a port nothing listens
// on, then, while WaitBuckets retries, opens the port as a TCP relay to the
// test MinIO: the buckets are made once storage is reachable, and every
// failed attempt was logged.
func TestWaitBucketsStorageComesUpLater(t *testing.T) {
	endpoint, access, secret := testenv.MinIO(t)
	addr := closedPort(t)
	s, err := storage.NewS3(storage.S3Config{Endpoint: addr, AccessKey: access, SecretKey: secret, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LogBuffer{}
	ctx := zerolog.New(logs).WithContext(t.Context())
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	done := make(chan error, 1)
	go func() { done <- storage.WaitBuckets(ctx, s, "wait-a", "wait-b") }()
	// Let it fail a few times before storage appears.
	for !strings.Contains(logs.String(), `"attempt":2`) {
		select {
		case err := <-done:
			t.Fatalf("WaitBuckets returned %v with storage down", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	relay(t, addr, endpoint)
	if err := <-done; err != nil {
		t.Fatalf("WaitBuckets: %v", err)
	}
	for _, b := range []string{"wait-a", "wait-b"} {
		if _, err := s.Put(t.Context(), b, "k", strings.NewReader("x"), 1, storage.ObjectMeta{}); err != nil {
			t.Fatalf("bucket %s not made: %v", b, err)
		}
	}
	if !strings.Contains(logs.String(), "storage not reachable; retrying") {
		t.Fatalf("failures not logged: %s", logs.String())
	}
}

func TestWaitBucketsPermanentErrorReturns(t *testing.T) {
	endpoint, access, _ := testenv.MinIO(t)
	s, err := storage.NewS3(storage.S3Config{Endpoint: endpoint, AccessKey: access, SecretKey: "wrong-secret", MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err = storage.WaitBuckets(ctx, s, "wait-creds")
	if err == nil || storage.IsTransient(err) || ctx.Err() != nil {
		t.Fatalf("err = %v (ctx %v), want a permanent error at once", err, ctx.Err())
	}
}

func TestWaitBucketsEndsWithContext(t *testing.T) {
	addr := closedPort(t)
	s, err := storage.NewS3(storage.S3Config{Endpoint: addr, AccessKey: "a", SecretKey: "b", MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	err = storage.WaitBuckets(ctx, s, "never")
	if err == nil || !storage.IsTransient(err) || ctx.Err() == nil {
		t.Fatalf("err = %v, want the context's end carrying the transient error", err)
	}
}

// relay listens on addr and copies every connection to and from target.
func relay(t *testing.T, addr, target string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { _, _ = io.Copy(u, c) }()
				_, _ = io.Copy(c, u)
			}()
		}
	}()
}

// closedPort returns an address on 127.0.0.1 nothing listens on (for now).
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

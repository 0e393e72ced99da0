package sender_test

import (
	"net/http/httptest"
	"testing"

	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// startEmulator serves an emulator for seller (no delays, no limits) on a loopback port until the
// test ends, and returns it with a client holding seller's token.
func startEmulator(t *testing.T, seller string) (*emulator.Emulator, *ksef.Client) {
	t.Helper()
	em, url := serveEmulator(t, seller)
	client, err := ksef.New(url, ksef.WithToken("tok"))
	if err != nil {
		t.Fatal(err)
	}
	return em, client
}

// serveEmulator is startEmulator without the client: the emulator and its URL.
func serveEmulator(t *testing.T, seller string) (*emulator.Emulator, string) {
	t.Helper()
	em, err := emulator.New(emulator.Config{Tokens: map[string]string{"tok": seller}, SchemaDir: testenv.SchemaDir(t),
		ProcessingDelay: -1, StorageDelay: -1, Limits: emulator.LimitConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { em.Close() })
	srv := httptest.NewServer(em.Handler())
	t.Cleanup(srv.Close)
	return em, srv.URL
}

// localStore returns a local store in a temporary directory with the invoices bucket, and the
// FA(3) validator over the Ministry's schemas: what every sender test loads and validates with.
func localStore(t *testing.T) (storage.Store, storage.Buckets, *fa3.Validator) {
	t.Helper()
	local, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	buckets := storage.DefaultBuckets()
	if err := local.EnsureBuckets(t.Context(), buckets.Invoices); err != nil {
		t.Fatal(err)
	}
	validator, err := fa3.NewValidator(testenv.SchemaDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { validator.Close() })
	return local, buckets, validator
}

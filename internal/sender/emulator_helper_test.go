package sender_test

import (
	"net/http/httptest"
	"testing"

	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
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

package emulator

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

func TestDataDirSurvivesRestart(t *testing.T) {
	dataDir := t.TempDir()
	persistent := func(c *Config) {
		c.DataDir = dataDir
		c.PrivateKey = nil // kept in the data dir
	}
	v := newEnv(t, persistent)
	xml := readSample(t, "valid", sample)
	s := v.open(tokA)
	id := s.send(xml)
	v.settle()
	st := s.status(id)
	if st.Status.Code != 200 {
		t.Fatalf("status %d", st.Status.Code)
	}
	open := v.open(tokA) // left open
	pub := v.e.PublicKey()
	v.srv.Close()
	if err := v.e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, keyFile)); err != nil {
		t.Fatal(err)
	}

	// A restart: same data dir, the clock where it was.
	cfg := v.e.cfg
	cfg.PrivateKey, cfg.TempDir, cfg.Logger = nil, t.TempDir(), nil
	e2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e2.Close() })
	srv := httptest.NewServer(e2.Handler())
	t.Cleanup(srv.Close)
	v2 := &env{t: t, e: e2, srv: srv, clock: v.clock}
	if !e2.PublicKey().Equal(pub) {
		t.Error("the key pair changed")
	}
	c := v2.client(tokA)
	ctx := context.Background()
	get, _ := c.KsefInvoiceGetWithResponse(ctx, *st.KsefNumber)
	if get.StatusCode() != http.StatusOK || !bytes.Equal(get.Body, xml) {
		t.Fatalf("get after restart: HTTP %d", get.StatusCode())
	}
	is, _ := c.KsefInvoiceStatusWithResponse(ctx, id)
	if is.JSON200 == nil || *is.JSON200.Invoices[0].KsefNumber != *st.KsefNumber {
		t.Fatalf("status after restart: %s", is.Body)
	}
	// The session left open was closed by the restart (its key was never written).
	ss, _ := c.KsefSessionStatusWithResponse(ctx, open.id)
	if ss.JSON200 == nil || ss.JSON200.SessionInfo.SessionStatus != ksefapi.Closed {
		t.Fatalf("open session after restart: %s", ss.Body)
	}
	// Duplicates are still recognised.
	s2 := v2.open(tokA)
	dup := s2.send(xml)
	v2.settle()
	if got := s2.status(dup); got.Status.Code != int32(ksef.StatusDuplicate) {
		t.Errorf("duplicate after restart: %d", got.Status.Code)
	}
	// The journal holds no session key.
	j, err := os.ReadFile(filepath.Join(dataDir, journalFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(j, []byte(b64(open.key.Key))) || bytes.Contains(j, []byte(b64(s.key.Key))) || bytes.Contains(j, []byte(b64(open.key.IV))) {
		t.Error("the journal holds a session key")
	}
}

func TestReplayCancelsUnfinishedInvoices(t *testing.T) {
	dataDir := t.TempDir()
	clock := newClock()
	inv := &invoice{ID: "i1", SessionID: "s1", Ordinal: 1, Owner: nipA, Received: clock.Now(), Due: clock.Now()}
	s := &session{ID: "s1", Owner: nipA, Created: clock.Now(), Expires: clock.Now().Add(DefaultSessionLifetime)}
	var buf bytes.Buffer
	for _, r := range []record{{Session: s, Counter: 5}, {Invoice: inv, Counter: 6}} {
		buf.Write(mustJSON(t, r))
		buf.WriteByte('\n')
	}
	buf.WriteString(`{"invoice":{"id":"cut`) // a crash mid-record
	if err := os.WriteFile(filepath.Join(dataDir, journalFile), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	v := newEnv(t, func(c *Config) { c.DataDir = dataDir; c.Now = clock.Now })
	v.clock = clock
	got := v.e.invoices["i1"]
	if got == nil || got.Status != ksef.StatusCancelled || !got.Processed {
		t.Fatalf("unfinished invoice after replay: %+v", got)
	}
	if v.e.counter != 6 {
		t.Errorf("counter %d", v.e.counter)
	}
	if ids := v.e.sessions["s1"].InvoiceIDs; len(ids) != 1 || ids[0] != "i1" {
		t.Errorf("session invoices %v", ids)
	}
}

package sender_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/sender"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// A replica that dies leaves its interactive session open; another replica finds it in the ledger
// once it is stale, closes it in KSeF and announces it, so that its UPO is still fetched.
func TestOrphanedSessionClosedByAnotherReplica(t *testing.T) {
	ctx := context.Background()
	js := testenv.JetStream(t)
	kv, err := natsx.EnsureKV(ctx, js, "sessions-test", 0)
	if err != nil {
		t.Fatal(err)
	}
	seller := demo.Sellers[0]
	_, client := startEmulator(t, seller)
	clients := func(context.Context, string) (*ksef.Client, error) { return client, nil }

	var mu sync.Mutex
	var closed []sender.ClosedSession
	onClosed := func(_ context.Context, s sender.ClosedSession) { mu.Lock(); closed = append(closed, s); mu.Unlock() }
	announced := func() []sender.ClosedSession {
		mu.Lock()
		defer mu.Unlock()
		return append([]sender.ClosedSession(nil), closed...)
	}

	// Replica A opens a session and sends an invoice into it, then dies without closing it.
	a := sender.NewPool(sender.PoolConfig{CloseIdle: time.Minute, Ledger: sender.NewLedger(natsx.NewCAS(kv), nil)}, clients, onClosed, nil)
	lease, err := a.Acquire(ctx, seller)
	if err != nil {
		t.Fatal(err)
	}
	xml, err := fa3.Generate(fa3wire.Request(demo.Request(seller, 1, time.Now())))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lease.Session.Send(ctx, xml); err != nil {
		t.Fatal(err)
	}
	sessionID := lease.Session.ID
	lease.Release(ctx, true, false)

	// Replica B, while A's entry is fresh, leaves it alone.
	var offset time.Duration
	clock := func() time.Time { return time.Now().Add(offset) }
	b := sender.NewPool(sender.PoolConfig{CloseIdle: time.Minute, Ledger: sender.NewLedger(natsx.NewCAS(kv), clock)}, clients, onClosed, clock)
	b.CloseOrphans(ctx)
	if info, err := client.SessionStatus(ctx, sessionID); err != nil || info.SessionStatus != ksefapi.Active {
		t.Fatalf("a live replica's session was closed: %+v, %v", info, err)
	}
	if got := announced(); len(got) != 0 {
		t.Fatalf("announced %v", got)
	}

	// Long after A would have closed it, B closes it and announces it.
	offset = 10 * time.Minute
	b.CloseOrphans(ctx)
	info, err := client.SessionStatus(ctx, sessionID)
	if err != nil || info.SessionStatus != ksefapi.Closed {
		t.Fatalf("the orphaned session is %+v, %v; want closed", info, err)
	}
	if got := announced(); len(got) != 1 || got[0].SessionID != sessionID || got[0].ContextNIP != seller || got[0].Invoices != 1 {
		t.Fatalf("announced %+v, want the orphan with its one invoice", got)
	}
	// Its ledger entry is gone: a third replica finds nothing to do.
	c := sender.NewPool(sender.PoolConfig{CloseIdle: time.Minute, Ledger: sender.NewLedger(natsx.NewCAS(kv), clock)}, clients, onClosed, clock)
	c.CloseOrphans(ctx)
	if got := announced(); len(got) != 1 {
		t.Fatalf("the orphan was announced again: %+v", got)
	}
}

package natsx_test

import (
	"context"
	"sync"
	"testing"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
)

func TestCASAgainstJetStream(t *testing.T) {
	js := testenv.JetStream(t)
	ctx := context.Background()
	kv, err := natsx.EnsureKV(ctx, js, "cas-test", 0)
	if err != nil {
		t.Fatal(err)
	}
	c := natsx.NewCAS(kv)
	v, rev, err := c.Get(ctx, "k")
	if err != nil || v != nil || rev != 0 {
		t.Fatalf("missing key: %q %d %v", v, rev, err)
	}
	if ok, err := c.Swap(ctx, "k", []byte("a"), 0); !ok || err != nil {
		t.Fatalf("create: %v %v", ok, err)
	}
	if ok, err := c.Swap(ctx, "k", []byte("b"), 0); ok || err != nil {
		t.Fatalf("second create must lose: %v %v", ok, err)
	}
	v, rev, _ = c.Get(ctx, "k")
	if string(v) != "a" || rev == 0 {
		t.Fatalf("got %q at %d", v, rev)
	}
	if ok, err := c.Swap(ctx, "k", []byte("c"), rev+5); ok || err != nil {
		t.Fatalf("stale revision must lose: %v %v", ok, err)
	}
	if ok, err := c.Swap(ctx, "k", []byte("c"), rev); !ok || err != nil {
		t.Fatalf("update: %v %v", ok, err)
	}
	// SwapRevision's revision is the one a Get sees, and the next write can use it as is.
	_, rev, _ = c.Get(ctx, "k")
	rev, err = c.SwapRevision(ctx, "k", []byte("d"), rev)
	if _, got, _ := c.Get(ctx, "k"); err != nil || rev == 0 || got != rev {
		t.Fatalf("SwapRevision: %d %v, Get's revision %d", rev, err, got)
	}
	if lost, err := c.SwapRevision(ctx, "k", []byte("e"), rev-1); lost != 0 || err != nil {
		t.Fatalf("stale SwapRevision must lose: %d %v", lost, err)
	}
	if next, err := c.SwapRevision(ctx, "k", []byte("e"), rev); next <= rev || err != nil {
		t.Fatalf("SwapRevision after SwapRevision: %d %v", next, err)
	}

	// Concurrent increments through Swap never lose an update.
	const n, workers = 50, 4
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				for {
					v, rev, err := c.Get(ctx, "counter")
					if err != nil {
						t.Error(err)
						return
					}
					next := append([]byte{}, v...)
					next = append(next, 'x')
					if ok, err := c.Swap(ctx, "counter", next, rev); err != nil {
						t.Error(err)
						return
					} else if ok {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	v, _, _ = c.Get(ctx, "counter")
	if len(v) != n*workers {
		t.Fatalf("counter = %d, want %d", len(v), n*workers)
	}
}

func TestCASKeysAndDelete(t *testing.T) {
	js := testenv.JetStream(t)
	ctx := context.Background()
	kv, err := natsx.EnsureKV(ctx, js, "cas-keys", 0)
	if err != nil {
		t.Fatal(err)
	}
	c := natsx.NewCAS(kv)
	for _, k := range []string{"sess.1.a", "sess.1.b", "sess.2.c", "inv.1.x"} {
		if ok, err := c.Swap(ctx, k, []byte(k), 0); !ok || err != nil {
			t.Fatal(k, ok, err)
		}
	}
	keys, err := c.Keys(ctx, "sess.")
	if err != nil || len(keys) != 3 {
		t.Fatalf("keys %v, %v", keys, err)
	}
	_, rev, _ := c.Get(ctx, "sess.1.a")
	if err := c.Delete(ctx, "sess.1.a", rev+1); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := c.Get(ctx, "sess.1.a"); v == nil {
		t.Fatal("a delete at a stale revision removed the key")
	}
	if err := c.Delete(ctx, "sess.1.a", rev); err != nil {
		t.Fatal(err)
	}
	if v, r, _ := c.Get(ctx, "sess.1.a"); v != nil || r != 0 {
		t.Fatalf("deleted key still reads %q at %d", v, r)
	}
	if keys, _ := c.Keys(ctx, "sess."); len(keys) != 2 {
		t.Fatalf("keys after delete %v", keys)
	}
}

package natsx

import (
	"strings"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/embedded/natsserver"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// TestKVLeaderReads: a bucket asked for leader reads has direct gets off, stays so when ensured
// again (an update by nats.go would turn them back on), and its handle reads through the
// leader; a bound worker finding direct gets still on is told to provision, not left reading
// from followers.
func TestKVLeaderReads(t *testing.T) {
	srv, err := natsserver.Run(natsserver.Options{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx := t.Context()
	nc, js, err := Connect(ctx, Config{URL: srv.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	allowDirect := func(bucket string) bool {
		t.Helper()
		s, err := js.Stream(ctx, "KV_"+bucket)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.AllowDirect
	}

	// The pipeline's settings with leader reads, then again as another worker would: nothing
	// flips.
	for range 2 {
		kv, err := EnsureKV(ctx, js, "LEADER", time.Hour, KVReplicas(1), KVLeaderReads())
		if err != nil {
			t.Fatal(err)
		}
		if allowDirect("LEADER") {
			t.Fatal("leader reads: the bucket's stream still allows direct gets")
		}
		if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
			t.Fatal(err)
		}
		if e, err := kv.Get(ctx, "k"); err != nil || string(e.Value()) != "v" {
			t.Fatalf("get through the leader: %v %v", e, err)
		}
	}
	// A change of TTL updates the bucket and leader reads stay.
	if _, err := EnsureKV(ctx, js, "LEADER", 2*time.Hour, KVLeaderReads()); err != nil {
		t.Fatal(err)
	}
	if s, _ := js.Stream(ctx, "KV_LEADER"); s.CachedInfo().Config.MaxAge != 2*time.Hour || allowDirect("LEADER") {
		t.Fatalf("after a TTL change: max age %v, allow direct %v", s.CachedInfo().Config.MaxAge, allowDirect("LEADER"))
	}

	// Without the option, nats.go's default (direct gets) is kept.
	if _, err := EnsureKV(ctx, js, "DIRECT", time.Hour); err != nil {
		t.Fatal(err)
	}
	if !allowDirect("DIRECT") {
		t.Fatal("a bucket without leader reads lost direct gets")
	}
	// A worker bound to a bucket provisioned before leader reads: an error naming the step.
	_, err = EnsureKV(ctx, BindOnly(js), "DIRECT", time.Hour, KVLeaderReads())
	if err == nil || !strings.Contains(err.Error(), "ksefctl nats provision") {
		t.Fatalf("bound worker, direct gets on: err = %v, want one naming the provisioning step", err)
	}
	if !allowDirect("DIRECT") {
		t.Fatal("a bound worker changed the bucket")
	}
	// Provisioned with leader reads, the bound worker reads through the leader too.
	if _, err := EnsureKV(ctx, js, "DIRECT", time.Hour, KVLeaderReads()); err != nil {
		t.Fatal(err)
	}
	kv, err := EnsureKV(ctx, BindOnly(js), "DIRECT", time.Hour, KVLeaderReads())
	if err != nil {
		t.Fatalf("bound worker after provisioning: %v", err)
	}
	if st, err := kv.Status(ctx); err != nil || st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.AllowDirect {
		t.Fatalf("bound handle: %v, direct gets still on", err)
	}
}

// TestKVLeaderReadsConcurrentStart: workers starting at once on a fresh server all make the
// bucket; every handle reads through the leader (none was bound while direct gets were on) and
// sees what another wrote.
func TestKVLeaderReadsConcurrentStart(t *testing.T) {
	srv, err := natsserver.Run(natsserver.Options{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx := t.Context()
	const workers = 8
	kvs := make([]jetstream.KeyValue, workers)
	var g errgroup.Group
	for i := range workers {
		g.Go(func() error {
			nc, js, err := Connect(ctx, Config{URL: srv.ClientURL()})
			if err != nil {
				return err
			}
			t.Cleanup(nc.Close)
			kvs[i], err = EnsureKV(ctx, js, "RACE", time.Hour, KVLeaderReads())
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := kvs[0].Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	for i, kv := range kvs {
		// Before Status, which refreshes the handle's idea of the stream: a handle bound while
		// direct gets were on would send one now and get no answer.
		if e, err := kv.Get(ctx, "k"); err != nil || string(e.Value()) != "v" {
			t.Fatalf("worker %d: get: %v %v", i, e, err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.AllowDirect {
			t.Fatalf("worker %d: the stream allows direct gets", i)
		}
	}
}

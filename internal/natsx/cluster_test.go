package natsx_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
)

// TestClusterReplicatedBucketsAndCAS: on a 3-node cluster EnsureStreams and EnsureKV with
// KVReplicas(3) make R3 streams, and a compare-and-set conflict on an R3 bucket is a lost swap,
// not an error.
func TestClusterReplicatedBucketsAndCAS(t *testing.T) {
	c := testenv.StartNATSCluster(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cfg := natsx.Config{URL: c.URL(), Replicas: 3}
	nc, js, err := natsx.Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	s, err := natsx.EnsureStreams(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.Replicas; got != 3 {
		t.Errorf("stream replicas %d, want 3", got)
	}
	kv, err := natsx.EnsureKV(ctx, js, "cas-r3", 0, natsx.KVReplicas(3))
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "KV_cas-r3")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Errorf("bucket: %d replicas configured, cluster %+v", info.Config.Replicas, info.Cluster)
	}
	// Updating an existing bucket keeps it (EnsureKV is create-or-update).
	if _, err := natsx.EnsureKV(ctx, js, "cas-r3", 0, natsx.KVReplicas(3)); err != nil {
		t.Fatal(err)
	}

	cas := natsx.NewCAS(kv)
	if ok, err := cas.Swap(ctx, "k", []byte("a"), 0); !ok || err != nil {
		t.Fatalf("create: %v %v", ok, err)
	}
	if ok, err := cas.Swap(ctx, "k", []byte("b"), 0); ok || err != nil {
		t.Fatalf("second create must lose without an error: %v %v", ok, err)
	}
	_, rev, _ := cas.Get(ctx, "k")
	if ok, err := cas.Swap(ctx, "k", []byte("c"), rev+7); ok || err != nil {
		t.Fatalf("stale update must lose without an error: %v %v", ok, err)
	}
	if err := cas.Delete(ctx, "k", rev+7); err != nil {
		t.Fatalf("stale delete: %v", err)
	}
	_, err = kv.Update(ctx, "k", []byte("d"), rev+7)
	if !natsx.IsWrongSequence(err) {
		t.Fatalf("IsWrongSequence(%v) = false", err)
	}
}

// TestProvisionTransient tells the errors a forming cluster gives from configuration errors.
func TestProvisionTransient(t *testing.T) {
	api := func(code jetstream.ErrorCode, status int) error {
		return &jetstream.APIError{ErrorCode: code, Code: status}
	}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{context.DeadlineExceeded, true},
		{jetstream.ErrJetStreamNotEnabled, true},
		{api(10008, 503), true},  // temporarily unavailable: no meta leader
		{api(10023, 503), true},  // insufficient resources
		{api(10005, 400), true},  // no suitable peers
		{api(10058, 400), true},  // name in use: a concurrent create
		{api(10074, 500), false}, // replicas > 1 on a server that is not clustered
		{api(10052, 500), false}, // invalid configuration
		{errors.New("permissions violation"), false},
		{context.Canceled, false},
	} {
		if got := natsx.ProvisionTransient(tt.err); got != tt.want {
			t.Errorf("ProvisionTransient(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestRetryGivesUpOnAPermanentError: Retry returns a configuration error at once, and a
// transient one when its context ends.
func TestRetryGivesUpOnAPermanentError(t *testing.T) {
	calls := 0
	err := natsx.Retry(t.Context(), "x", func(context.Context) error {
		calls++
		return &jetstream.APIError{ErrorCode: 10074, Code: 500}
	})
	if err == nil || calls != 1 {
		t.Fatalf("permanent error: %v after %d calls", err, calls)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	calls = 0
	err = natsx.Retry(ctx, "x", func(context.Context) error {
		calls++
		return &jetstream.APIError{ErrorCode: 10008, Code: 503}
	})
	if !errors.Is(err, context.DeadlineExceeded) || calls < 2 {
		t.Fatalf("transient error: %v after %d calls", err, calls)
	}
	calls = 0
	if err := natsx.Retry(t.Context(), "x", func(context.Context) error {
		if calls++; calls < 3 {
			return &jetstream.APIError{ErrorCode: 10023, Code: 503}
		}
		return nil
	}); err != nil || calls != 3 {
		t.Fatalf("%v after %d calls", err, calls)
	}
}

package natsx

import (
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/embedded/natsserver"
	"github.com/nats-io/nats.go/jetstream"
)

// TestBindOnly: a bound client looks up what exists and creates nothing; what is missing, or a
// consumer provisioned otherwise than the worker wants, is an error.
func TestBindOnly(t *testing.T) {
	srv, err := natsserver.Run(natsserver.Options{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx := t.Context()
	cfg := Config{URL: srv.ClientURL()}
	nc, js, err := Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	bound := BindOnly(js)
	if _, err := EnsureStreams(ctx, bound, cfg); err == nil {
		t.Fatal("a bound client created the stream")
	}
	if _, err := EnsureKV(ctx, bound, "KSEF_STATE", 0); err == nil {
		t.Fatal("a bound client created a KV bucket")
	}
	if _, err := EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureKV(ctx, js, "KSEF_STATE", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureStreams(ctx, bound, cfg); err != nil {
		t.Fatalf("looking up the provisioned stream: %v", err)
	}
	if _, err := EnsureKV(ctx, bound, "KSEF_STATE", 0); err != nil {
		t.Fatalf("looking up the provisioned bucket: %v", err)
	}
	want := jetstream.ConsumerConfig{Durable: "w", FilterSubjects: []string{"invoice.sent"}, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 30 * time.Second, MaxAckPending: 100}
	if _, err := bound.CreateOrUpdateConsumer(ctx, "KSEF", want); err == nil {
		t.Fatal("a bound client created a consumer")
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, "KSEF", want); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mut  func(*jetstream.ConsumerConfig)
		ok   bool
	}{
		{"as provisioned", func(*jetstream.ConsumerConfig) {}, true},
		{"other filter", func(c *jetstream.ConsumerConfig) { c.FilterSubjects = []string{"invoice.accepted"} }, false},
		{"other AckWait", func(c *jetstream.ConsumerConfig) { c.AckWait = time.Second }, false},
		{"other MaxAckPending", func(c *jetstream.ConsumerConfig) { c.MaxAckPending = 5 }, false},
	} {
		c := want
		tc.mut(&c)
		if _, err := bound.CreateOrUpdateConsumer(ctx, "KSEF", c); (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	info, err := js.Consumer(ctx, "KSEF", "w")
	if err != nil || info.CachedInfo().Config.AckWait != want.AckWait {
		t.Errorf("the bound lookups changed the consumer: %v", err)
	}
}

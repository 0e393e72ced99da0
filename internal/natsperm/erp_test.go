package natsperm

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// startWithPermissions runs an in-process nats-server with JetStream and Render(prefix)'s users
// (password "pw-<user>") and returns its URL.
func startWithPermissions(t *testing.T, prefix string) string {
	t.Helper()
	for _, u := range Users(prefix) {
		t.Setenv(strings.TrimPrefix(u.Password, "$"), "pw-"+u.Name)
	}
	s := testenv.NATSFromConfig(t, fmt.Sprintf("listen: 127.0.0.1:-1\njetstream { store_dir: %q }\n%s", t.TempDir(), Render(prefix)))
	return s.ClientURL()
}

func connectAs(t *testing.T, url, user string) (jetstream.JetStream, natsx.Config) {
	t.Helper()
	cfg := natsx.Config{URL: url, User: user, Password: "pw-" + user}
	if user == ERP {
		cfg.ReadStream = natsx.ERPStreamName("")
	}
	nc, js, err := natsx.Connect(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return js, cfg
}

// TestERPConsumersConfined: against the generated permissions, the erp user creates, reads
// from, looks up and deletes consumers of its own on the ERP mirror, durable and ordered, and
// cannot create any consumer on the pipeline's stream nor look up, pull from, update or delete a
// worker's; the worker's consumer is checked unchanged afterwards as the admin.
func TestERPConsumersConfined(t *testing.T) {
	url := startWithPermissions(t, "")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	admin, adminCfg := connectAs(t, url, Admin)
	if _, err := natsx.EnsureStreams(ctx, admin, adminCfg); err != nil {
		t.Fatal(err)
	}
	if _, err := natsx.EnsureERPStream(ctx, admin, adminCfg); err != nil {
		t.Fatal(err)
	}
	stream, erpStream := natsx.StreamName(""), natsx.ERPStreamName("")
	subj := events.Subjects{}
	worker := jetstream.ConsumerConfig{Durable: Sender, FilterSubject: subj.InvoiceSubmitted(), AckPolicy: jetstream.AckExplicitPolicy}
	if _, err := admin.CreateOrUpdateConsumer(ctx, stream, worker); err != nil {
		t.Fatal(err)
	}

	erp, erpCfg := connectAs(t, url, ERP)
	ev := &events.InvoiceSubmitted{InlineXML: []byte("<x/>")}
	ev.InvoiceID, ev.ContextNIP = "FV/1", "5261040828"
	if err := natsx.NewPublisher(erp, erpCfg).Publish(ctx, ev, nil); err != nil {
		t.Fatalf("the erp user submitting: %v", err)
	}

	// Its own, on the mirror: a durable consumer created, read, looked up and deleted.
	own := jetstream.ConsumerConfig{Durable: "erp-billing", FilterSubject: subj.InvoiceSubmitted(), AckPolicy: jetstream.AckExplicitPolicy}
	c, err := erp.CreateOrUpdateConsumer(ctx, erpStream, own)
	if err != nil {
		t.Fatalf("the erp user creating its consumer on %s: %v", erpStream, err)
	}
	msg, err := c.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil || msg.Subject() != subj.InvoiceSubmitted() {
		t.Fatalf("reading its consumer: %v", err)
	}
	if err := msg.DoubleAck(ctx); err != nil {
		t.Fatalf("acking on its consumer: %v", err)
	}
	if _, err := erp.Consumer(ctx, erpStream, own.Durable); err != nil {
		t.Fatalf("looking up its consumer: %v", err)
	}
	if err := erp.DeleteConsumer(ctx, erpStream, own.Durable); err != nil {
		t.Fatalf("deleting its consumer: %v", err)
	}
	if _, err := admin.Consumer(ctx, erpStream, own.Durable); err == nil {
		t.Fatal("its consumer is still there after the delete")
	}
	// Ordered (ephemeral) readers, as ksefctl and the examples read, on the mirror.
	var read int
	if err := natsx.Follow(ctx, erp, erpCfg, natsx.FollowOptions{}, func(natsx.Delivered) error { read++; return nil }); err != nil || read != 1 {
		t.Fatalf("following %s: %d events, %v", erpStream, read, err)
	}

	// Nothing on the pipeline's stream.
	refused := []struct {
		name string
		try  func(context.Context) error
	}{
		{"create its own consumer on " + stream, func(ctx context.Context) error {
			_, err := erp.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: "erp-billing", AckPolicy: jetstream.AckExplicitPolicy})
			return err
		}},
		{"create an ordered consumer on " + stream, func(ctx context.Context) error {
			_, err := erp.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
			return err
		}},
		{"update the worker's consumer", func(ctx context.Context) error {
			upd := worker
			upd.FilterSubject = subj.InvoiceAccepted()
			_, err := erp.CreateOrUpdateConsumer(ctx, stream, upd)
			return err
		}},
		{"delete the worker's consumer", func(ctx context.Context) error { return erp.DeleteConsumer(ctx, stream, Sender) }},
		{"look up the worker's consumer", func(ctx context.Context) error {
			_, err := erp.Consumer(ctx, stream, Sender)
			return err
		}},
		{"pull the worker's messages", func(ctx context.Context) error {
			// The lookup is refused already; the pull request itself, by subject.
			_, err := erp.Conn().Request("$JS.API.CONSUMER.MSG.NEXT."+stream+"."+Sender, []byte(`{"batch":1}`), 2*time.Second)
			return err
		}},
	}
	t.Run("refused", func(t *testing.T) {
		for _, tc := range refused {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel() // each waits out its request
				ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				defer cancel()
				if err := tc.try(ctx); err == nil {
					t.Fatalf("the erp user could %s", tc.name)
				}
			})
		}
	})
	got, err := admin.Consumer(ctx, stream, Sender)
	if err != nil {
		t.Fatalf("the worker's consumer is gone: %v", err)
	}
	if info := got.CachedInfo(); info.Config.FilterSubject != worker.FilterSubject || info.NumAckPending != 0 || info.Delivered.Stream != 0 {
		t.Fatalf("the worker's consumer changed: filter %s, delivered %d", info.Config.FilterSubject, info.Delivered.Stream)
	}
	st, err := admin.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	names := st.ConsumerNames(ctx)
	for n := range names.Name() {
		if n != Sender {
			t.Errorf("consumer %s on %s besides the worker's", n, stream)
		}
	}
}

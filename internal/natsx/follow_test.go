package natsx_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/nats-io/nats.go/jetstream"
)

// pipelineStream starts NATS with the pipeline's stream and returns a context bounded for the
// test, the configuration, a JetStream client and a publisher.
func pipelineStream(t *testing.T) (context.Context, natsx.Config, jetstream.JetStream, *natsx.Publisher) {
	t.Helper()
	_, url := testenv.NATS(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	cfg := natsx.Config{URL: url}.WithDefaults()
	nc, js, err := natsx.Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := natsx.EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	return ctx, cfg, js, natsx.NewPublisher(js, cfg)
}

func TestFollow(t *testing.T) {
	ctx, cfg, js, pub := pipelineStream(t)
	var err error
	for i := range 5 {
		ev := &events.InvoiceSubmitted{InlineXML: []byte(fmt.Sprintf("<x%d/>", i))}
		ev.InvoiceID, ev.ContextNIP = fmt.Sprintf("FV/%d", i), "5261040828"
		if err := pub.Publish(ctx, ev, nil); err != nil {
			t.Fatal(err)
		}
	}
	closed := &events.SessionClosed{SessionID: "s-1", Mode: events.ModeOnline, InvoiceCount: 5}
	closed.ContextNIP = "5261040828"
	if err := pub.Publish(ctx, closed, nil); err != nil {
		t.Fatal(err)
	}

	var all []natsx.Delivered
	if err := natsx.Follow(ctx, js, cfg, natsx.FollowOptions{}, func(d natsx.Delivered) error { all = append(all, d); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 || all[5].Event.EventType() != events.TypeSessionClosed || all[0].Seq != 1 {
		t.Fatalf("read %d events", len(all))
	}
	for _, d := range all {
		if d.Err != nil || d.Event == nil {
			t.Fatalf("undecoded event: %v", d.Err)
		}
	}

	var filtered int
	err = natsx.Follow(ctx, js, cfg, natsx.FollowOptions{Subjects: []string{cfg.Subjects().SessionClosed()}},
		func(d natsx.Delivered) error { filtered++; return nil })
	if err != nil || filtered != 1 {
		t.Fatalf("filtered read %d events, err %v", filtered, err)
	}

	// Live: a later event arrives too; the callback's error ends the reading.
	stop := errors.New("stop")
	done := make(chan error, 1)
	go func() {
		n := 0
		done <- natsx.Follow(ctx, js, cfg, natsx.FollowOptions{Live: true}, func(d natsx.Delivered) error {
			n++
			if n == 7 {
				return stop
			}
			return nil
		})
	}()
	late := &events.SessionClosed{SessionID: "s-2", Mode: events.ModeOnline, InvoiceCount: 1}
	late.ContextNIP = "5261040828"
	time.Sleep(200 * time.Millisecond)
	if err := pub.Publish(ctx, late, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, stop) {
		t.Fatalf("live follow ended with %v", err)
	}
}

// A filtered, non-live read ends although the stream's last message is on another subject.
func TestFollowFilteredEndsWhenTheLastMessageIsElsewhere(t *testing.T) {
	_, url := testenv.NATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := natsx.Config{URL: url}.WithDefaults()
	nc, js, err := natsx.Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := natsx.EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	pub := natsx.NewPublisher(js, cfg)
	closed := &events.SessionClosed{SessionID: "s-1", Mode: events.ModeOnline, InvoiceCount: 1}
	closed.ContextNIP = "5261040828"
	sub := &events.InvoiceSubmitted{InlineXML: []byte("<x/>")}
	sub.InvoiceID, sub.ContextNIP = "FV/1", "5261040828"
	for _, ev := range []events.Event{closed, sub} { // the last message is not a session event
		if err := pub.Publish(ctx, ev, nil); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	err = natsx.Follow(ctx, js, cfg, natsx.FollowOptions{Subjects: []string{cfg.Subjects().SessionClosed()}},
		func(natsx.Delivered) error { n++; return nil })
	if err != nil || n != 1 {
		t.Fatalf("read %d, err %v (a context deadline means it hung)", n, err)
	}
}

// TestFollowERPMirror: the ERP systems' stream mirrors the pipeline's, sequence numbers and
// subjects included, and Follow reads it when ReadStream names it; ensuring it again changes
// nothing, and names never collide with another prefix's stream.
func TestFollowERPMirror(t *testing.T) {
	ctx, cfg, js, pub := pipelineStream(t)
	for i := range 3 {
		ev := &events.SessionClosed{SessionID: fmt.Sprintf("s-%d", i), Mode: events.ModeOnline, InvoiceCount: 1}
		ev.ContextNIP = "5261040828"
		if err := pub.Publish(ctx, ev, nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 { // idempotent
		if _, err := natsx.EnsureERPStream(ctx, js, cfg); err != nil {
			t.Fatal(err)
		}
	}
	mirror, err := js.Stream(ctx, natsx.ERPStreamName(""))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		info, err := mirror.Info(ctx)
		if err == nil && info.State.Msgs == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mirror holds %v messages (%v), want 3", info, err)
		}
	}
	read := cfg
	read.ReadStream = natsx.ERPStreamName(cfg.SubjectPrefix)
	var got []natsx.Delivered
	if err := natsx.Follow(ctx, js, read, natsx.FollowOptions{}, func(d natsx.Delivered) error { got = append(got, d); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Seq != 1 || got[2].Subject != cfg.Subjects().SessionClosed() || got[2].Event == nil {
		t.Fatalf("read from the mirror: %+v", got)
	}
	for _, prefix := range []string{"", "erp", "acme", "acme.erp", "acme_erp"} {
		for _, other := range []string{"", "erp", "acme", "acme.erp", "acme_erp"} {
			if natsx.ERPStreamName(prefix) == natsx.StreamName(other) {
				t.Errorf("ERPStreamName(%q) is StreamName(%q)", prefix, other)
			}
		}
	}
	c, err := natsx.ConfigFromEnv(func(k string) string { return map[string]string{natsx.EnvReadStream: "KSEF-ERP"}[k] })
	if err != nil || c.ReadStreamName() != "KSEF-ERP" || (natsx.Config{SubjectPrefix: "acme"}).ReadStreamName() != "KSEF_ACME" {
		t.Fatalf("ReadStreamName: %q, %v", c.ReadStreamName(), err)
	}
}

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
)

func TestFollow(t *testing.T) {
	_, url := testenv.NATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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

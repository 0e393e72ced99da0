package natsx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// Delivered is one event read from the stream.
type Delivered struct {
	Subject string
	Seq     uint64
	Time    time.Time
	Data    []byte
	// Event is the decoded event; nil when Err says why it could not be decoded.
	Event events.Event
	Err   error
}

// FollowOptions select what Follow reads.
type FollowOptions struct {
	// Subjects are full subjects or wildcards; empty means every event of the stream.
	Subjects []string
	// Since starts at the first event stored at or after it; zero means from the beginning.
	Since time.Time
	// Live: after the stored events, wait for new ones until ctx ends. Otherwise Follow returns
	// once it has read what the stream held when it started.
	Live bool
}

// Follow reads the pipeline's events in stream order with an ordered (ephemeral) consumer, so
// audit readers never disturb the workers' durable consumers. It reads cfg.ReadStreamName(): the
// pipeline's stream, or the ERP systems' mirror of it. fn's error stops the reading.
func Follow(ctx context.Context, js jetstream.JetStream, cfg Config, o FollowOptions, fn func(Delivered) error) error {
	cfg = cfg.WithDefaults()
	stream, err := js.Stream(ctx, cfg.ReadStreamName())
	if err != nil {
		return fmt.Errorf("natsx: stream: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("natsx: stream info: %w", err)
	}
	last := info.State.LastSeq
	// A reader that goes away leaves its consumer behind only briefly.
	occ := jetstream.OrderedConsumerConfig{FilterSubjects: o.Subjects, DeliverPolicy: jetstream.DeliverAllPolicy,
		InactiveThreshold: 30 * time.Second}
	if !o.Since.IsZero() {
		since := o.Since
		occ.DeliverPolicy, occ.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := stream.OrderedConsumer(ctx, occ)
	if err != nil {
		return fmt.Errorf("natsx: ordered consumer: %w", err)
	}
	if !o.Live && last == 0 {
		return nil
	}
	codec := cfg.Codec()
	for {
		if !o.Live {
			// Stop once nothing the filter matches is left: the stream's last message may be on
			// another subject, or older than Since, and never come.
			ci, err := cons.Info(ctx)
			if err == nil && ci.NumPending == 0 {
				return nil
			}
		}
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("natsx: fetch: %w", err)
		}
		for msg := range batch.Messages() {
			meta, _ := msg.Metadata()
			d := Delivered{Subject: msg.Subject(), Data: msg.Data()}
			if meta != nil {
				d.Seq, d.Time = meta.Sequence.Stream, meta.Timestamp
			}
			d.Event, d.Err = codec.Decode(msg.Data())
			if err := fn(d); err != nil {
				return err
			}
			if !o.Live && d.Seq >= last {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("natsx: fetch: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

package natsx

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// HeaderCorrelationID carries the event's correlation id, so consumers can
// log and route without decoding the body.
const HeaderCorrelationID = "Ksef-Correlation-Id"

// Publisher publishes events to the pipeline's stream.
type Publisher struct {
	js       jetstream.JetStream
	subjects events.Subjects
	codec    events.Codec
	stream   string

	// AttemptTimeout bounds one publish attempt (default 5s).
	AttemptTimeout time.Duration
	// MaxBackoff caps the pause between attempts (default 5s).
	MaxBackoff time.Duration
}

// NewPublisher returns a Publisher for cfg's prefix, stream and limits.
func NewPublisher(js jetstream.JetStream, cfg Config) *Publisher {
	return &Publisher{
		js:             js,
		subjects:       cfg.Subjects(),
		codec:          cfg.Codec(),
		stream:         StreamName(cfg.SubjectPrefix),
		AttemptTimeout: 5 * time.Second,
		MaxBackoff:     5 * time.Second,
	}
}

// Subjects returns the subject builder the publisher uses.
func (p *Publisher) Subjects() events.Subjects { return p.subjects }

// Publish encodes ev (filling its common fields, see events.Codec.Encode)
// and publishes it on its subject with Nats-Msg-Id = events.MsgID(ev) and
// the correlation id in the Ksef-Correlation-Id header. hdr (may be nil)
// adds headers. Transient failures (timeouts, no responders, a stream
// without a leader) are retried with jittered backoff until ctx ends;
// validation and other JetStream errors are returned at once.
func (p *Publisher) Publish(ctx context.Context, ev events.Event, hdr nats.Header) error {
	_, err := p.PublishAck(ctx, ev, hdr)
	return err
}

// PublishAck is Publish returning the stream's acknowledgement; its
// Duplicate field tells a deduplicated publish.
func (p *Publisher) PublishAck(ctx context.Context, ev events.Event, hdr nats.Header) (*jetstream.PubAck, error) {
	data, err := p.codec.Encode(ev)
	if err != nil {
		return nil, err
	}
	m := ev.Common()
	msg := &nats.Msg{Subject: p.subjects.For(ev), Data: data, Header: nats.Header{}}
	for k, v := range hdr {
		msg.Header[k] = append([]string(nil), v...)
	}
	msg.Header.Set(jetstream.MsgIDHeader, m.EventID)
	msg.Header.Set(HeaderCorrelationID, m.CorrelationID)

	log := zerolog.Ctx(ctx)
	delay := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, p.AttemptTimeout)
		ack, err := p.js.PublishMsg(actx, msg, jetstream.WithExpectStream(p.stream))
		cancel()
		if err == nil {
			return ack, nil
		}
		if ctx.Err() != nil || !Transient(err) {
			return nil, fmt.Errorf("natsx: publish %s %s: %w", msg.Subject, m.EventID, err)
		}
		d := delay/2 + rand.N(delay/2+1)
		log.Warn().Err(err).Str("subject", msg.Subject).Int("attempt", attempt).Dur("retry_in", d).Msg("publish failed, retrying")
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("natsx: publish %s %s: %w (last error: %w)", msg.Subject, m.EventID, ctx.Err(), err)
		case <-time.After(d):
		}
		delay = min(2*delay, p.MaxBackoff)
	}
}

// Transient reports whether a NATS or JetStream error may go away by
// itself: timeouts, no responders, disconnection, and JetStream's 503
// (no stream leader). A closed connection, a wrong stream and a too large
// message are not transient.
func Transient(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case err == nil:
		return false
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrConnectionReconnecting):
		return true
	case errors.As(err, &apiErr):
		return apiErr.Code == 503 || apiErr.Code == 408
	}
	return false
}

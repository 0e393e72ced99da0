package worker

import (
	"context"

	"github.com/nats-io/nats.go"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// Publisher publishes the events a handler produces; *natsx.Publisher implements it.
type Publisher interface {
	Publish(ctx context.Context, ev events.Event, hdr nats.Header) error
}

package ctl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
)

// watch follows the stream live from sequence seq (the first message published by this run,
// so nothing after it is missed, whenever the reading starts) on subjects. The channels close
// or report once ctx ends or the stream cannot be read.
func (c *conn) watch(ctx context.Context, seq uint64, subjects []string) (<-chan natsx.Delivered, <-chan error) {
	out := make(chan natsx.Delivered, 64)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		// The stream's own time of that message: the client's clock may differ from the server's.
		msg, err := c.storedMsg(ctx, seq)
		if err != nil {
			errc <- fmt.Errorf("reading stream message %d: %w", seq, err)
			return
		}
		err = natsx.Follow(ctx, c.js, c.cfg, natsx.FollowOptions{Subjects: subjects, Since: msg.Time, Live: true},
			func(d natsx.Delivered) error {
				if d.Seq < seq {
					return nil
				}
				select {
				case out <- d:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			errc <- err
		}
	}()
	return out, errc
}

// storedMsg gets message seq of the stream read, waiting up to mirrorLag for it: a mirror
// (KSEF_NATS_READ_STREAM) holds a message just published to the pipeline's stream a little later.
func (c *conn) storedMsg(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
	deadline := time.Now().Add(mirrorLag)
	for {
		msg, err := c.stream.GetMsg(ctx, seq)
		if !errors.Is(err, jetstream.ErrMsgNotFound) || time.Now().After(deadline) {
			return msg, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// mirrorLag bounds how long storedMsg waits for a message to reach a mirror.
const mirrorLag = 10 * time.Second

// errRead ends a read at the last stored message.
var errRead = errors.New("read to the end")

// read reads the stream's stored events (from o.Since) on o.Subjects, in order; with o.Live it
// goes on with new ones. natsx.Follow alone cannot tell the end of a read whose last message
// precedes o.Since or, filtered, is not the stream's last; so a read follows live up to the last
// stored message of its subjects.
func (c *conn) read(ctx context.Context, o natsx.FollowOptions, fn func(natsx.Delivered) error) error {
	if o.Live {
		return natsx.Follow(ctx, c.js, c.cfg, o, fn)
	}
	var last uint64
	var lastTime time.Time
	if len(o.Subjects) == 0 {
		info, err := c.stream.Info(ctx)
		if err != nil {
			return fmt.Errorf("natsx: stream info: %w", err)
		}
		last, lastTime = info.State.LastSeq, info.State.LastTime
	}
	for _, s := range o.Subjects {
		m, err := c.stream.GetLastMsgForSubject(ctx, s)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("natsx: last message on %s: %w", s, err)
		}
		if m.Sequence > last {
			last, lastTime = m.Sequence, m.Time
		}
	}
	if last == 0 || !o.Since.IsZero() && lastTime.Before(o.Since) {
		return nil
	}
	o.Live = true
	err := natsx.Follow(ctx, c.js, c.cfg, o, func(d natsx.Delivered) error {
		if err := fn(d); err != nil {
			return err
		}
		if d.Seq >= last {
			return errRead
		}
		return nil
	})
	if errors.Is(err, errRead) {
		return nil
	}
	return err
}

package ctl

import (
	"context"
	"errors"
	"fmt"

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
		msg, err := c.stream.GetMsg(ctx, seq)
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

package bench

import (
	"context"
	"sync/atomic"
	"time"
)

// Clock runs Factor times faster than real time, so an hour of KSeF's request windows passes in
// 3600/Factor seconds. The emulator, the pipeline's limiter and its KSeF clients share one, so
// both sides count the same windows.
type Clock struct {
	Factor float64
	at     atomic.Pointer[clockMark]
}

// clockMark pairs a real instant with the clock's reading then.
type clockMark struct{ real, clock time.Time }

// NewClock starts a clock running factor times faster than time.Now.
func NewClock(factor float64) *Clock {
	c := &Clock{Factor: factor}
	now := time.Now()
	c.at.Store(&clockMark{now, now})
	return c
}

// Restart marks the start of the measured time: Elapsed counts from here.
func (c *Clock) Restart() {
	now := time.Now()
	c.at.Store(&clockMark{now, c.read(now)})
}

func (c *Clock) read(real time.Time) time.Time {
	m := c.at.Load()
	return m.clock.Add(time.Duration(float64(real.Sub(m.real)) * c.Factor))
}

// Now is the accelerated time (never going back).
func (c *Clock) Now() time.Time { return c.read(time.Now()) }

// Elapsed is clock time since the (re)start.
func (c *Clock) Elapsed() time.Duration {
	m := c.at.Load()
	return time.Duration(float64(time.Since(m.real)) * c.Factor)
}

// Real converts a clock duration into real time.
func (c *Clock) Real(d time.Duration) time.Duration { return time.Duration(float64(d) / c.Factor) }

// Sleep waits d of clock time.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(c.Real(d))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Package ratelimit keeps every KSeF context under the service's request limits, across all
// replicas of all workers. KSeF counts requests per context in three sliding windows at once
// (second, minute, hour) and answers 429 past any of them; repeated 429s lengthen a lock-out, so
// the pipeline must not rely on 429s to find the limit.
//
// The limiter keeps, per context and operation, a log of the instants at which requests were
// granted, in a shared store (JetStream KV in production) updated with compare-and-set, so that
// replicas never grant more than the limit between them. A request is granted only when each
// window holds fewer than its limit; entries count for their window plus a margin, because KSeF
// stamps a request when it arrives, a little after it was granted here. A 429 that still comes
// records a pause that every replica honours.
package ratelimit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// Store is a shared key-value store with compare-and-set. Get of a missing key returns a nil
// value and revision 0. Swap writes value only if the key is still at revision (0: absent) and
// reports whether it did.
type Store interface {
	Get(ctx context.Context, key string) (value []byte, revision uint64, err error)
	Swap(ctx context.Context, key string, value []byte, revision uint64) (bool, error)
}

// Config sets the limits and how close to them the limiter goes.
type Config struct {
	Limits ksef.Limits
	// Margin is added to each window when counting (network delay and clock skew between the
	// replicas and KSeF). Default 2 s.
	Margin time.Duration
	// Headroom is the share of each limit used, in (0, 1]; default 1.
	Headroom float64
	Now      func() time.Time
	Sleep    func(ctx context.Context, d time.Duration) error
}

// Limiter grants requests for many contexts.
type Limiter struct {
	store Store
	cfg   Config
}

// New returns a limiter over store.
func New(store Store, cfg Config) *Limiter {
	if cfg.Margin == 0 {
		cfg.Margin = 2 * time.Second
	}
	if cfg.Headroom <= 0 || cfg.Headroom > 1 {
		cfg.Headroom = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = ksef.Sleep
	}
	return &Limiter{store: store, cfg: cfg}
}

// WaitError is returned by a context's limiter when the next slot is further away than the
// caller wants to block (ksefInvoiceQueryStart allows 20 an hour): a worker snoozes its message
// for Wait instead of holding a goroutine.
type WaitError struct {
	Op   ksef.Operation
	Wait time.Duration
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("request limit of %s: next slot in %s", e.Op, e.Wait.Round(time.Second))
}

// For returns the ksef.Limiter of one context (a seller NIP). Its Wait blocks while the next slot
// is at most maxWait away and returns a *WaitError otherwise; maxWait <= 0 always blocks.
func (l *Limiter) For(contextNIP string, maxWait time.Duration) ksef.Limiter {
	return contextLimiter{l, contextNIP, maxWait}
}

type contextLimiter struct {
	l       *Limiter
	nip     string
	maxWait time.Duration
}

func (c contextLimiter) Wait(ctx context.Context, op ksef.Operation) error {
	for {
		d, err := c.l.Reserve(ctx, c.nip, op)
		if err != nil || d == 0 {
			return err
		}
		if c.maxWait > 0 && d > c.maxWait {
			return &WaitError{Op: op, Wait: d}
		}
		if err := c.l.cfg.Sleep(ctx, d); err != nil {
			return err
		}
	}
}

func (c contextLimiter) Throttled(ctx context.Context, op ksef.Operation, retryAfter time.Duration) {
	// Best effort: if the store is down the next Wait fails anyway.
	_ = c.l.Throttled(ctx, c.nip, op, retryAfter)
}

func key(nip string, op ksef.Operation) string { return nip + "." + string(op) }

// limits are the effective limits of op: the configured ones times Headroom.
func (l *Limiter) limits(op ksef.Operation) ([3]int, bool) {
	w, ok := l.cfg.Limits[op]
	if !ok {
		return [3]int{}, false
	}
	if l.cfg.Headroom < 1 {
		w = w.Scale(l.cfg.Headroom)
	}
	return w.Limits(), true
}

// Wait blocks until a request of op in the context may be sent, and records it.
func (l *Limiter) Wait(ctx context.Context, nip string, op ksef.Operation) error {
	for {
		d, err := l.Reserve(ctx, nip, op)
		if err != nil {
			return err
		}
		if d == 0 {
			return nil
		}
		if err := l.cfg.Sleep(ctx, d); err != nil {
			return err
		}
	}
}

// Reserve records a request of op when one may be sent now and returns 0; otherwise it records
// nothing and returns how long to wait before asking again.
func (l *Limiter) Reserve(ctx context.Context, nip string, op ksef.Operation) (time.Duration, error) {
	limits, limited := l.limits(op)
	if !limited {
		return 0, nil
	}
	k := key(nip, op)
	for {
		raw, rev, err := l.store.Get(ctx, k)
		if err != nil {
			return 0, fmt.Errorf("ratelimit: reading %s: %w", k, err)
		}
		st, err := decode(raw)
		if err != nil {
			return 0, fmt.Errorf("ratelimit: %s: %w", k, err)
		}
		now := l.cfg.Now()
		st.prune(now, l.cfg.Margin)
		if wait := st.wait(now, limits, l.cfg.Margin); wait > 0 {
			return wait, nil
		}
		st.grants = append(st.grants, now.UnixMilli())
		swapped, err := l.store.Swap(ctx, k, st.encode(), rev)
		if err != nil {
			return 0, fmt.Errorf("ratelimit: writing %s: %w", k, err)
		}
		if swapped {
			return 0, nil
		}
		// Another replica granted one meanwhile: count again.
	}
}

// Throttled records that KSeF answered 429 to op: no replica sends op for the context until
// retryAfter has passed (at least one second).
func (l *Limiter) Throttled(ctx context.Context, nip string, op ksef.Operation, retryAfter time.Duration) error {
	retryAfter = max(retryAfter, time.Second)
	k := key(nip, op)
	for {
		raw, rev, err := l.store.Get(ctx, k)
		if err != nil {
			return err
		}
		st, err := decode(raw)
		if err != nil {
			return err
		}
		until := l.cfg.Now().Add(retryAfter).UnixMilli()
		if st.pausedUntil >= until {
			return nil
		}
		st.pausedUntil = until
		if swapped, err := l.store.Swap(ctx, k, st.encode(), rev); err != nil || swapped {
			return err
		}
	}
}

// state is the shared record of one context and operation.
type state struct {
	pausedUntil int64   // unix ms; 0 when not paused
	grants      []int64 // unix ms of granted requests, ascending
}

var errCorrupt = errors.New("corrupt limiter state")

// encode: pausedUntil, then the grants, each as a big-endian int64.
func (s state) encode() []byte {
	b := make([]byte, 8*(1+len(s.grants)))
	binary.BigEndian.PutUint64(b, uint64(s.pausedUntil))
	for i, g := range s.grants {
		binary.BigEndian.PutUint64(b[8*(i+1):], uint64(g))
	}
	return b
}

func decode(b []byte) (state, error) {
	if len(b) == 0 {
		return state{}, nil
	}
	if len(b)%8 != 0 {
		return state{}, errCorrupt
	}
	s := state{pausedUntil: int64(binary.BigEndian.Uint64(b)), grants: make([]int64, 0, len(b)/8)}
	for i := 8; i < len(b); i += 8 {
		s.grants = append(s.grants, int64(binary.BigEndian.Uint64(b[i:])))
	}
	return s, nil
}

// prune drops grants that no window counts any more.
func (s *state) prune(now time.Time, margin time.Duration) {
	oldest := now.Add(-ksef.Spans[2] - margin).UnixMilli()
	i, _ := slices.BinarySearch(s.grants, oldest+1)
	s.grants = s.grants[i:]
}

// wait is how long until one more grant fits every window, 0 if it fits now.
func (s *state) wait(now time.Time, limits [3]int, margin time.Duration) time.Duration {
	nowMs := now.UnixMilli()
	var wait int64
	if s.pausedUntil > nowMs {
		wait = s.pausedUntil - nowMs
	}
	for i, limit := range limits {
		if limit <= 0 {
			continue
		}
		span := (ksef.Spans[i] + margin).Milliseconds()
		// Grants within the window (nowMs-span, nowMs].
		from, _ := slices.BinarySearch(s.grants, nowMs-span+1)
		inWindow := len(s.grants) - from
		if inWindow < limit {
			continue
		}
		// The window frees a slot when the grant limit-th from the end leaves it.
		leaving := s.grants[len(s.grants)-limit]
		wait = max(wait, leaving+span-nowMs)
	}
	if wait <= 0 {
		return 0
	}
	return time.Duration(wait) * time.Millisecond
}

// Pause reports whether err means "not now" rather than "failed": the shared limiter has no slot
// soon enough (*WaitError), or KSeF answered 429. It returns how long to wait before trying
// again; workers snooze their message for it instead of counting a failure.
func Pause(err error) (time.Duration, bool) {
	var we *WaitError
	if errors.As(err, &we) {
		return we.Wait, true
	}
	var ke *ksef.Error
	if errors.As(err, &ke) && ke.TooManyRequests() {
		return max(ke.RetryAfter, time.Second), true
	}
	return 0, false
}

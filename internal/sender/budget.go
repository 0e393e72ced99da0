package sender

import (
	"context"
	"fmt"
	"io"

	"golang.org/x/sync/semaphore"
)

// budget bounds the invoice bytes the sender's handlers hold at once, from loading an invoice
// until it is sent or handed to a batch package. Without it every handler waiting for its
// context's session or request slot would keep its XML, and a backlog of 1 MB invoices would
// cost the handler count in megabytes.
//
// A handler takes its share before it loads anything and holds no lease or session while it
// waits for it, so waiting on the budget cannot deadlock with waiting for a session.
type budget struct {
	sem *semaphore.Weighted
	max int64
}

func newBudget(size int64) *budget { return &budget{sem: semaphore.NewWeighted(size), max: size} }

// share is one handler's part of the budget; release is idempotent.
type share struct {
	b *budget
	n int64
}

// take waits for n bytes of the budget (at most all of it).
func (b *budget) take(ctx context.Context, n int64) (*share, error) {
	n = min(max(n, 1), b.max)
	if err := b.sem.Acquire(ctx, n); err != nil {
		return nil, fmt.Errorf("waiting for the sender's memory budget: %w", err)
	}
	return &share{b: b, n: n}, nil
}

// fit makes the share exactly n bytes: it gives back what is not needed, or, when n is more than
// it holds, gives everything back and waits for n, so that it never waits while holding a part.
func (s *share) fit(ctx context.Context, n int64) error {
	n = min(max(n, 1), s.b.max)
	switch {
	case n < s.n:
		s.b.sem.Release(s.n - n)
		s.n = n
	case n > s.n:
		s.release()
		if err := s.b.sem.Acquire(ctx, n); err != nil {
			return fmt.Errorf("waiting for the sender's memory budget: %w", err)
		}
		s.n = n
	}
	return nil
}

func (s *share) release() {
	if s.n > 0 {
		s.b.sem.Release(s.n)
		s.n = 0
	}
}

// readAtMost reads r to its end, but no more than limit+1 bytes (one more tells the caller the
// object outgrew its share). The buffer is allocated once at the size the store reported, so a
// 1 MB invoice costs 1 MB: io.ReadAll would grow it from 512 bytes, leaving about its size again
// in garbage and up to a quarter unused at the end, and the budget counts only the document.
func readAtMost(r io.Reader, size, limit int64) ([]byte, error) {
	buf := make([]byte, 0, min(max(size, 0), limit)+1) // +1: the read that finds the end
	r = io.LimitReader(r, limit+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // bigger than reported: grow as io.ReadAll does
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

package sender

import (
	"context"
	"fmt"

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

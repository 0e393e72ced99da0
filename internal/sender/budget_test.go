package sender

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

func TestBudgetTakeWaitsUntilReleased(t *testing.T) {
	b := newBudget(100)
	first, err := b.take(context.Background(), 80)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *share)
	go func() {
		s, err := b.take(context.Background(), 40)
		if err != nil {
			t.Error(err)
		}
		got <- s
	}()
	select {
	case <-got:
		t.Fatal("took 40 of 100 bytes while 80 were held")
	case <-time.After(50 * time.Millisecond):
	}
	first.release()
	first.release() // idempotent: must not give back more than was taken
	second := <-got
	if second.n != 40 {
		t.Fatalf("share = %d, want 40", second.n)
	}
	// 60 left: a take of 61 must wait, one of 60 must not.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.take(ctx, 61); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("take(61) with 60 free: err = %v, want deadline exceeded", err)
	}
	if _, err := b.take(context.Background(), 60); err != nil {
		t.Fatal(err)
	}
}

func TestBudgetFit(t *testing.T) {
	tests := []struct {
		name       string
		take, fit  int64
		wantShare  int64
		wantFreeAt int64 // a take of this much succeeds at once afterwards
	}{
		{"shrink gives the rest back", 100, 30, 30, 70},
		{"grow within the budget", 10, 90, 90, 10},
		{"capped at the whole budget", 10, 500, 100, 0},
		{"zero keeps one byte", 50, 0, 1, 99},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBudget(100)
			s, err := b.take(context.Background(), tc.take)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.fit(context.Background(), tc.fit); err != nil {
				t.Fatal(err)
			}
			if s.n != tc.wantShare {
				t.Fatalf("share = %d, want %d", s.n, tc.wantShare)
			}
			if tc.wantFreeAt > 0 && !b.sem.TryAcquire(tc.wantFreeAt) {
				t.Fatalf("%d bytes should be free", tc.wantFreeAt)
			}
			if b.sem.TryAcquire(1) {
				t.Fatal("more than the budget was handed out")
			}
		})
	}
}

// Two shares that both grow past what is free must not deadlock: each gives its part back before
// waiting for the bigger one.
func TestBudgetGrowingSharesDoNotDeadlock(t *testing.T) {
	b := newBudget(100)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		s, err := b.take(ctx, 50)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.fit(ctx, 80); err != nil {
				errs <- err
				return
			}
			time.Sleep(10 * time.Millisecond)
			s.release()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if !b.sem.TryAcquire(100) {
		t.Fatal("the budget was not fully given back")
	}
}

func TestReadAtMost(t *testing.T) {
	doc := bytes.Repeat([]byte("<Faktura/>"), 10_000) // 100,000 bytes
	n := int64(len(doc))
	tests := []struct {
		name    string
		r       io.Reader
		size    int64 // as the store reported it
		limit   int64
		want    int64 // bytes returned
		wantCap int64 // 0: not checked
		wantErr bool
	}{
		{"as reported: one buffer of that size", bytes.NewReader(doc), n, n, n, n + 1, false},
		{"as reported, in small reads", iotest.HalfReader(bytes.NewReader(doc)), n, n, n, n + 1, false},
		{"smaller than reported", bytes.NewReader(doc[:10]), n, n, 10, 0, false},
		{"bigger than reported, within the limit", bytes.NewReader(doc), 10, n, n, 0, false},
		{"over the limit: one byte more tells", bytes.NewReader(doc), n, 1000, 1001, 0, false},
		{"unknown size", bytes.NewReader(doc), 0, n, n, 0, false},
		{"read error", iotest.TimeoutReader(bytes.NewReader(doc)), n, n, 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAtMost(tc.r, tc.size, tc.limit)
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(got)) != tc.want || !bytes.Equal(got, doc[:tc.want]) {
				t.Fatalf("read %d bytes, want the first %d of the document", len(got), tc.want)
			}
			if tc.wantCap > 0 && int64(cap(got)) != tc.wantCap {
				t.Fatalf("buffer of %d bytes for a %d-byte document: grown, not allocated at its size", cap(got), len(got))
			}
		})
	}
}

package emulator

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// classBatchClose is the limit class of closing a batch session: KSeF counts it apart from
// closing an interactive one, with the batch limits (10/20/60).
const classBatchClose = "ksefSessionClose/batch"

// limiter enforces the per-context request limits: sliding windows of a second, a minute and
// an hour per (context, operation), refused requests not counted, and lock-outs that grow
// with repeated 429s (official/limity/limity-api.md).
type limiter struct {
	cfg    LimitConfig
	table  map[string]ksef.Window
	mu     sync.Mutex
	states map[string]*limitState
}

type limitState struct {
	granted     []time.Time // ascending, the last hour
	strikes     []time.Time // 429s within LockoutWindow
	lockedUntil time.Time
}

func newLimiter(cfg LimitConfig) *limiter {
	l := &limiter{cfg: cfg, table: make(map[string]ksef.Window), states: make(map[string]*limitState)}
	for op, w := range cfg.Table {
		l.table[string(op)] = w.Scale(cfg.Multiplier)
	}
	if w, ok := cfg.Table[ksef.OpSessionOpenBatch]; ok {
		l.table[classBatchClose] = w.Scale(cfg.Multiplier)
	}
	return l
}

// limitClass is the counter a request is charged to.
func (e *Emulator) limitClass(r *http.Request, op ksef.Operation) string {
	if op == ksef.OpSessionClose {
		e.mu.Lock()
		s := e.sessions[r.PathValue("sessionId")]
		batch := s != nil && s.Batch
		e.mu.Unlock()
		if batch {
			return classBatchClose
		}
	}
	return string(op)
}

// checkLimit charges one request of the class to the context, or refuses it with a 429.
func (e *Emulator) checkLimit(nip, class string) *apiError {
	wait, details := e.limiter.take(nip, class, e.now())
	if wait == 0 {
		return nil
	}
	e.stats.tooMany()
	return &apiError{
		status:     http.StatusTooManyRequests,
		code:       ksef.CodeTooManyRequests,
		details:    details,
		retryAfter: wait,
	}
}

var windowNames = [3]string{"na sekundę", "na minutę", "na godzinę"}

// take grants a request (returning 0) or returns how long to wait and why.
func (l *limiter) take(nip, class string, now time.Time) (time.Duration, string) {
	if l.cfg.Disabled {
		return 0, ""
	}
	w, ok := l.table[class]
	if !ok {
		return 0, ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	key := nip + "|" + class
	st := l.states[key]
	if st == nil {
		st = &limitState{}
		l.states[key] = st
	}
	st.granted = trimBefore(st.granted, now.Add(-time.Hour))

	if now.Before(st.lockedUntil) {
		wait := l.strike(st, now)
		return wait, fmt.Sprintf("Dostęp zablokowany po wielokrotnym przekroczeniu limitu żądań. Spróbuj ponownie po %d sekundach.", retryAfterSeconds(wait))
	}
	var (
		wait    time.Duration
		details string
	)
	for i, limit := range w.Limits() {
		if limit <= 0 {
			continue
		}
		span := ksef.Spans[i]
		from := sort.Search(len(st.granted), func(j int) bool { return st.granted[j].After(now.Add(-span)) })
		inWindow := len(st.granted) - from
		if inWindow < limit {
			continue
		}
		// The window frees a place when its (inWindow-limit)th oldest request leaves it.
		free := st.granted[from+inWindow-limit].Add(span).Sub(now)
		if free > wait {
			wait = free
			details = fmt.Sprintf("Przekroczono limit %d żądań %s.", limit, windowNames[i])
		}
	}
	if wait == 0 {
		st.granted = append(st.granted, now)
		return 0, ""
	}
	wait = max(wait, l.strike(st, now))
	return wait, fmt.Sprintf("%s Spróbuj ponownie po %d sekundach.", details, retryAfterSeconds(wait))
}

// strike records a 429 and returns the lock-out it earns (0 while under LockoutAfter).
func (l *limiter) strike(st *limitState, now time.Time) time.Duration {
	st.strikes = append(trimBefore(st.strikes, now.Add(-l.cfg.LockoutWindow)), now)
	if l.cfg.LockoutAfter < 0 {
		return 0
	}
	over := len(st.strikes) - l.cfg.LockoutAfter
	if over <= 0 {
		return 0
	}
	lock := l.cfg.LockoutBase << min(over-1, 30)
	if lock <= 0 || lock > l.cfg.LockoutMax {
		lock = l.cfg.LockoutMax
	}
	if until := now.Add(lock); until.After(st.lockedUntil) {
		st.lockedUntil = until
	}
	return st.lockedUntil.Sub(now)
}

// reset forgets every counter and lock-out.
func (l *limiter) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.states)
}

// trimBefore drops the leading times not after t.
func trimBefore(ts []time.Time, t time.Time) []time.Time {
	i := sort.Search(len(ts), func(j int) bool { return ts[j].After(t) })
	if i == 0 {
		return ts
	}
	return append(ts[:0], ts[i:]...)
}

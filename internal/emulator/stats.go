package emulator

import (
	"encoding/json"
	"maps"
	"net/http"
	"sync"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// Stats is a snapshot of what the emulator has seen, for tests and benchmarks (also served as
// JSON by GET /emulator/stats).
type Stats struct {
	// Requests counts answers per operation and HTTP status.
	Requests map[ksef.Operation]map[int]int `json:"requests"`
	// TooManyRequests counts every 429 returned, from the limits or injected.
	TooManyRequests int `json:"tooManyRequests"`
	// Faults counts injected faults by kind: 429, 5xx, ambiguous, stuck, earlyExpiry,
	// packageFail, batchOpenFail, cancel, batchStuck, uploadHang.
	Faults map[string]int `json:"faults"`
	// Panics counts handler panics answered 500.
	Panics int `json:"panics"`
	// Outcomes counts final invoice statuses (200, 430, 440, ...).
	Outcomes map[ksef.StatusCode]int `json:"outcomes"`
	// Sends counts how many times each invoice reached processing, keyed by SendKey (seller
	// NIP, P_2 and SHA-256); invoices that could not be decrypted or parsed have empty NIP and
	// number. Invoices cancelled by the cancel fault and packages failed by the packageFail or
	// batchOpenFail faults are not counted: KSeF did not process them, so sending them again
	// is right.
	Sends    map[string]int `json:"sends"`
	Sessions int            `json:"sessions"`
	Queries  int            `json:"queries"`
}

// SendKey is the key of Stats.Sends.
func SendKey(sellerNIP, invoiceNumber, hash string) string {
	return sellerNIP + "|" + invoiceNumber + "|" + hash
}

type stats struct {
	mu sync.Mutex
	s  Stats
}

func newStats() *stats {
	st := &stats{}
	st.resetLocked()
	return st
}

func (st *stats) resetLocked() {
	st.s = Stats{
		Requests: make(map[ksef.Operation]map[int]int),
		Faults:   make(map[string]int),
		Outcomes: make(map[ksef.StatusCode]int),
		Sends:    make(map[string]int),
	}
}

func (st *stats) update(f func(s *Stats)) {
	st.mu.Lock()
	f(&st.s)
	st.mu.Unlock()
}

func (st *stats) record(op ksef.Operation, status int) {
	st.update(func(s *Stats) {
		m := s.Requests[op]
		if m == nil {
			m = make(map[int]int)
			s.Requests[op] = m
		}
		m[status]++
	})
}

func (st *stats) tooMany()                  { st.update(func(s *Stats) { s.TooManyRequests++ }) }
func (st *stats) fault(kind string)         { st.update(func(s *Stats) { s.Faults[kind]++ }) }
func (st *stats) panic()                    { st.update(func(s *Stats) { s.Panics++ }) }
func (st *stats) outcome(c ksef.StatusCode) { st.update(func(s *Stats) { s.Outcomes[c]++ }) }
func (st *stats) session()                  { st.update(func(s *Stats) { s.Sessions++ }) }
func (st *stats) query()                    { st.update(func(s *Stats) { s.Queries++ }) }
func (st *stats) sent(nip, number, hash string) {
	st.update(func(s *Stats) { s.Sends[SendKey(nip, number, hash)]++ })
}

func (st *stats) snapshot() Stats {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := st.s
	out.Requests = make(map[ksef.Operation]map[int]int, len(st.s.Requests))
	for op, m := range st.s.Requests {
		out.Requests[op] = maps.Clone(m)
	}
	out.Faults = maps.Clone(st.s.Faults)
	out.Outcomes = maps.Clone(st.s.Outcomes)
	out.Sends = maps.Clone(st.s.Sends)
	return out
}

// Stats returns a snapshot of the counters.
func (e *Emulator) Stats() Stats { return e.stats.snapshot() }

// ResetStats zeroes the counters (not the state: sessions and invoices stay).
func (e *Emulator) ResetStats() {
	e.stats.mu.Lock()
	e.stats.resetLocked()
	e.stats.mu.Unlock()
}

// ResetLimits forgets every request counter and lock-out.
func (e *Emulator) ResetLimits() { e.limiter.reset() }

// SendCount is how many times the invoice (seller NIP, P_2, SHA-256 of the XML) reached
// processing: 1 proves it was sent exactly once.
func (e *Emulator) SendCount(sellerNIP, invoiceNumber, hash string) int {
	e.stats.mu.Lock()
	defer e.stats.mu.Unlock()
	return e.stats.s.Sends[SendKey(sellerNIP, invoiceNumber, hash)]
}

// Requests is how many answers with the HTTP status the operation got.
func (e *Emulator) Requests(op ksef.Operation, status int) int {
	e.stats.mu.Lock()
	defer e.stats.mu.Unlock()
	return e.stats.s.Requests[op][status]
}

// TooManyRequests is how many 429s the emulator has returned.
func (e *Emulator) TooManyRequests() int {
	e.stats.mu.Lock()
	defer e.stats.mu.Unlock()
	return e.stats.s.TooManyRequests
}

func (e *Emulator) handleStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(e.Stats())
}

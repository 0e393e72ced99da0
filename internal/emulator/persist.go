package emulator

import (
	"bufio"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

const (
	journalFile = "emulator.jsonl"
	keyFile     = "key.pem"
)

// journal is the append-only log of DataDir: one JSON record per line, each the full state of
// a session or an invoice when it changes. Replaying it (last record wins) restores the state.
// Session keys are never written: sessions left open by a restart are closed by it, and
// invoices caught mid-processing end with status 550.
type journal struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

type record struct {
	Session *session `json:"session,omitempty"`
	Invoice *invoice `json:"invoice,omitempty"`
	Counter uint64   `json:"counter"`
}

// openJournal replays path into e (which must not be serving yet) and opens it for appending.
func openJournal(path string, e *Emulator) (*journal, error) {
	if err := e.replay(path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("emulator: opening the journal: %w", err)
	}
	return &journal{f: f, w: bufio.NewWriter(f)}, nil
}

func (e *Emulator) replay(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("emulator: reading the journal: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			// A crash may leave the last line cut short.
			e.log.Warn().Int("line", line).Err(err).Msg("skipping a damaged journal record")
			continue
		}
		e.counter = max(e.counter, r.Counter)
		if r.Session != nil {
			e.sessions[r.Session.ID] = r.Session
		}
		if r.Invoice != nil {
			e.invoices[r.Invoice.ID] = r.Invoice
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("emulator: reading the journal: %w", err)
	}

	now := e.now()
	for _, s := range e.sessions {
		s.parts = make(map[int32]string)
		if s.Closed.IsZero() && now.Before(s.Expires) {
			if s.Batch {
				s.Expires = now // not closed in time: cancelled
			} else {
				s.Closed = now
			}
		}
		if s.Batch && !s.Closed.IsZero() && !s.BatchDone {
			s.BatchDone, s.BatchStatus, s.BatchDetail = true, int(ksef.StatusUnknown), "Przetwarzanie przerwane przez restart"
		}
	}
	invs := make([]*invoice, 0, len(e.invoices))
	for _, inv := range e.invoices {
		invs = append(invs, inv)
	}
	slices.SortFunc(invs, func(a, b *invoice) int { return a.Received.Compare(b.Received) })
	for _, inv := range invs {
		if !inv.Processed {
			inv.Processed = true
			inv.Status = ksef.StatusCancelled
			inv.Details = cancelledDetails
		}
		if s := e.sessions[inv.SessionID]; s != nil {
			s.InvoiceIDs = append(s.InvoiceIDs, inv.ID)
		}
		if inv.Status == ksef.StatusAccepted {
			e.byKsef[inv.KsefNumber] = inv
			if k := duplicateKey(inv); e.accepted[k] == nil {
				e.accepted[k] = inv
			}
		}
	}
	for _, s := range e.sessions {
		slices.SortFunc(s.InvoiceIDs, func(a, b string) int { return e.invoices[a].Ordinal - e.invoices[b].Ordinal })
	}
	e.log.Info().Int("sessions", len(e.sessions)).Int("invoices", len(e.invoices)).Msg("journal replayed")
	return nil
}

func (j *journal) put(r record) {
	if j == nil {
		return
	}
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.w.Write(b)
	j.w.WriteByte('\n')
	j.w.Flush()
}

// logSession and logInvoice journal the current state; the caller holds e.mu, which also
// orders the records.
func (e *Emulator) logSession(s *session) {
	e.journal.put(record{Session: s, Counter: e.counter})
}

func (e *Emulator) logInvoice(inv *invoice) {
	e.journal.put(record{Invoice: inv, Counter: e.counter})
}

func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.w.Flush(); err != nil {
		j.f.Close()
		return err
	}
	return j.f.Close()
}

// loadOrCreateKey reads the PEM key pair at path, creating it when missing.
func loadOrCreateKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("emulator: %s holds no PEM block", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("emulator: parsing %s: %w", path, err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("emulator: %s is not an RSA key", path)
		}
		return rk, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("emulator: reading the key: %w", err)
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("emulator: generating the key pair: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("emulator: saving the key: %w", err)
	}
	return k, nil
}

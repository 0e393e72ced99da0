package sender

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/invoicestate"
)

// Registry is a shared key-value store that can also list and delete keys (natsx.CAS).
type Registry interface {
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Swap(ctx context.Context, key string, value []byte, revision uint64) (bool, error)
	Keys(ctx context.Context, prefix string) ([]string, error)
	Delete(ctx context.Context, key string, revision uint64) error
}

// Ledger records the interactive sessions each sender replica holds open, in a bucket every
// replica shares, so that a session left open by a replica that died is closed by another one and
// its UPO still fetched.
type Ledger struct {
	reg   Registry
	owner string // this replica, for this run
	now   func() time.Time
}

// NewLedger returns a ledger over reg; each call gives a new owner identity.
func NewLedger(reg Registry, now func() time.Time) *Ledger {
	var b [8]byte
	rand.Read(b[:])
	if now == nil {
		now = time.Now
	}
	return &Ledger{reg: reg, owner: hex.EncodeToString(b[:]), now: now}
}

// LedgerEntry is one open session.
type LedgerEntry struct {
	ContextNIP string    `json:"nip"`
	SessionID  string    `json:"id"`
	Owner      string    `json:"owner"`
	Opened     time.Time `json:"opened"`
	LastUsed   time.Time `json:"lastUsed"`
	Sent       int       `json:"sent"`
	rev        uint64
}

const ledgerPrefix = "sess."

func ledgerKey(nip, sessionID string) string {
	return invoicestate.Key(nip, sessionID)[len("inv."):] // same escaping as invoice keys
}

// Record writes (or refreshes) the entry of a session this replica holds.
func (l *Ledger) Record(ctx context.Context, nip, sessionID string, opened time.Time, sent int) error {
	key := ledgerPrefix + ledgerKey(nip, sessionID)
	e := LedgerEntry{ContextNIP: nip, SessionID: sessionID, Owner: l.owner, Opened: opened, LastUsed: l.now(), Sent: sent}
	raw, err := json.Marshal(e)
	if err != nil {
		return err
	}
	for range 5 {
		_, rev, err := l.reg.Get(ctx, key)
		if err != nil {
			return err
		}
		ok, err := l.reg.Swap(ctx, key, raw, rev)
		if err != nil || ok {
			return err
		}
	}
	return fmt.Errorf("ledger: %s keeps changing", key)
}

// Forget removes a session this replica closed or lost.
func (l *Ledger) Forget(ctx context.Context, nip, sessionID string) error {
	key := ledgerPrefix + ledgerKey(nip, sessionID)
	_, rev, err := l.reg.Get(ctx, key)
	if err != nil || rev == 0 {
		return err
	}
	return l.reg.Delete(ctx, key, rev)
}

// Orphans returns the sessions unused for longer than staleAfter: their owner would have closed
// them by then, so it is gone (or it is this replica, which claimed an orphan and failed to close
// it: the caller skips the sessions it holds).
func (l *Ledger) Orphans(ctx context.Context, staleAfter time.Duration) ([]LedgerEntry, error) {
	keys, err := l.reg.Keys(ctx, ledgerPrefix)
	if err != nil {
		return nil, err
	}
	now := l.now()
	var out []LedgerEntry
	for _, key := range keys {
		if !strings.HasPrefix(key, ledgerPrefix) {
			continue
		}
		raw, rev, err := l.reg.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		var e LedgerEntry
		if raw == nil || json.Unmarshal(raw, &e) != nil {
			continue
		}
		if now.Sub(e.LastUsed) > staleAfter {
			e.rev = rev
			out = append(out, e)
		}
	}
	return out, nil
}

// Claim takes an orphan over; false means another replica claimed it first.
func (l *Ledger) Claim(ctx context.Context, e LedgerEntry) (bool, error) {
	key := ledgerPrefix + ledgerKey(e.ContextNIP, e.SessionID)
	e.Owner, e.LastUsed = l.owner, l.now()
	raw, err := json.Marshal(e)
	if err != nil {
		return false, err
	}
	return l.reg.Swap(ctx, key, raw, e.rev)
}

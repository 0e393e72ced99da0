package sender

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// PoolConfig says when an interactive session is rotated.
type PoolConfig struct {
	// MaxInvoices per session; KSeF takes at most 10,000.
	MaxInvoices int
	// MaxAge of a session; KSeF ends interactive sessions after 12 hours.
	MaxAge time.Duration
	// CheckIdle: a session unused for longer is checked with ksefSessionStatus before use.
	CheckIdle time.Duration
	// CloseIdle: a session unused for longer is closed, so that its UPO is issued without
	// waiting for the session to fill up or age out. 0 means 2 minutes; negative never.
	CloseIdle time.Duration
	// Open, when set, counts the sessions the pool holds open (a metrics gauge): Inc when one
	// opens, Dec when it is closed or forgotten.
	Open Gauge
	// Ledger, when set, records the open sessions where every replica sees them, so that the
	// sessions of a replica that died are closed by another (and their UPOs fetched).
	Ledger *Ledger
}

// Gauge is a metric that goes up and down; prometheus.Gauge implements it.
type Gauge interface {
	Inc()
	Dec()
}

func (c PoolConfig) withDefaults() PoolConfig {
	if c.MaxInvoices <= 0 || c.MaxInvoices > 10000 {
		c.MaxInvoices = 10000
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 11 * time.Hour
	}
	if c.CheckIdle <= 0 {
		c.CheckIdle = 5 * time.Minute
	}
	if c.CloseIdle == 0 {
		c.CloseIdle = 2 * time.Minute
	}
	return c
}

// ClosedSession is what the pool reports after closing a session.
type ClosedSession struct {
	ContextNIP string
	SessionID  string
	Invoices   int
	Err        error // the close failed; the session expires on its own in KSeF
}

// Pool keeps one open interactive session per seller context and reuses it for many invoices.
// Sessions are rotated by count and age, checked before use when idle, and closed on rotation and
// on Close. Invoices of one context are sent one at a time per replica: KSeF's send limit per
// context is far below what one connection carries, so more parallelism would only queue.
type Pool struct {
	cfg      PoolConfig
	clients  func(ctx context.Context, nip string) (*ksef.Client, error)
	onClosed func(ctx context.Context, s ClosedSession)
	now      func() time.Time

	mu       sync.Mutex
	contexts map[string]*pooled
	held     map[string]bool // ids of the sessions this pool holds open
}

type pooled struct {
	mu       sync.Mutex // held while a send uses the session
	session  *ksef.Session
	client   *ksef.Client
	sent     int
	lastUsed time.Time
	recorded time.Time // when the ledger entry was last refreshed
}

// ledgerRefresh is how often a used session's ledger entry is refreshed.
const ledgerRefresh = 30 * time.Second

// NewPool returns a pool. clients gives the KSeF client of a context; onClosed is called after
// every close (to publish session.closed), outside of any lock.
func NewPool(cfg PoolConfig, clients func(ctx context.Context, nip string) (*ksef.Client, error), onClosed func(ctx context.Context, s ClosedSession), now func() time.Time) *Pool {
	if now == nil {
		now = time.Now
	}
	return &Pool{cfg: cfg.withDefaults(), clients: clients, onClosed: onClosed, now: now, contexts: map[string]*pooled{}, held: map[string]bool{}}
}

func (p *Pool) entry(nip string) *pooled {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.contexts[nip]
	if e == nil {
		e = &pooled{}
		p.contexts[nip] = e
	}
	return e
}

// Lease is a session lent for one send.
type Lease struct {
	Session *ksef.Session
	Client  *ksef.Client
	e       *pooled
	p       *Pool
	nip     string
}

// Acquire lends the context's session, opening or rotating it as needed. Release the lease.
func (p *Pool) Acquire(ctx context.Context, nip string) (*Lease, error) {
	e := p.entry(nip)
	e.mu.Lock()
	release := true
	defer func() {
		if release {
			e.mu.Unlock()
		}
	}()
	if e.client == nil {
		c, err := p.clients(ctx, nip)
		if err != nil {
			return nil, err
		}
		e.client = c
	}
	now := p.now()
	if e.session != nil {
		switch {
		case e.sent >= p.cfg.MaxInvoices || now.Sub(e.session.Created) >= p.cfg.MaxAge:
			p.closeLocked(ctx, nip, e)
		case now.Sub(e.lastUsed) >= p.cfg.CheckIdle:
			info, err := e.client.SessionStatus(ctx, e.session.ID)
			if err != nil && !isSessionGone(err) {
				return nil, fmt.Errorf("checking session %s: %w", e.session.ID, err)
			}
			if err != nil || info.SessionStatus != "active" {
				// Expired or closed under us: nothing to close, but its UPO may still be due.
				p.forgetLocked(ctx, nip, e, nil)
			}
		}
	}
	if e.session == nil {
		s, err := e.client.OpenSession(ctx)
		if err != nil {
			return nil, err
		}
		e.session, e.sent = s, 0
		if p.cfg.Open != nil {
			p.cfg.Open.Inc()
		}
		p.mu.Lock()
		p.held[s.ID] = true
		p.mu.Unlock()
		p.record(ctx, nip, e)
	}
	e.lastUsed = now
	release = false
	return &Lease{Session: e.session, Client: e.client, e: e, p: p, nip: nip}, nil
}

// isSessionGone reports errors meaning the session no longer exists for us.
func isSessionGone(err error) bool {
	return ksef.HasCode(err, ksef.CodeSessionUnknown) || ksef.HasCode(err, ksef.CodeSessionAccess)
}

// Release returns the session. sent says whether an invoice went into it; broken that the
// session must not be used again (it was closed or expired under us).
func (l *Lease) Release(ctx context.Context, sent, broken bool) {
	defer l.e.mu.Unlock()
	if sent {
		l.e.sent++
		// The first send and then every ledgerRefresh: an orphan's count and age stay close.
		if l.e.sent == 1 || l.p.now().Sub(l.e.recorded) >= ledgerRefresh {
			l.p.record(ctx, l.nip, l.e)
		}
	}
	if broken && l.e.session == l.Session {
		l.p.forgetLocked(ctx, l.nip, l.e, nil)
	}
}

func (p *Pool) closeLocked(ctx context.Context, nip string, e *pooled) {
	err := e.session.Close(ctx)
	p.forgetLocked(ctx, nip, e, err)
}

// record refreshes the session's ledger entry; a failure is logged, not fatal (the entry only
// matters if this replica dies).
func (p *Pool) record(ctx context.Context, nip string, e *pooled) {
	if p.cfg.Ledger == nil {
		return
	}
	if err := p.cfg.Ledger.Record(ctx, nip, e.session.ID, e.session.Created, e.sent); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("session_id", e.session.ID).Msg("recording the open session failed")
	}
	e.recorded = p.now()
}

func (p *Pool) forgetLocked(ctx context.Context, nip string, e *pooled, err error) {
	s := ClosedSession{ContextNIP: nip, SessionID: e.session.ID, Invoices: e.sent, Err: err}
	p.mu.Lock()
	delete(p.held, s.SessionID)
	p.mu.Unlock()
	if err != nil && !isSessionGone(err) && p.cfg.Ledger != nil {
		// The close failed (or its answer was lost, or no request slot): the ledger entry stays,
		// unrefreshed, so that CloseOrphans closes the session once the entry is stale and
		// announces it then, instead of announcing a session whose UPO cannot come.
		zerolog.Ctx(ctx).Warn().Err(err).Str("session_id", s.SessionID).Msg("closing a KSeF session failed; it is closed again later")
		e.session.Forget()
		e.session, e.sent = nil, 0
		if p.cfg.Open != nil {
			p.cfg.Open.Dec()
		}
		return
	}
	if p.cfg.Ledger != nil {
		if lerr := p.cfg.Ledger.Forget(ctx, nip, e.session.ID); lerr != nil {
			zerolog.Ctx(ctx).Warn().Err(lerr).Str("session_id", e.session.ID).Msg("removing the session from the ledger failed")
		}
	}
	e.session.Forget()
	e.session, e.sent = nil, 0
	if p.cfg.Open != nil {
		p.cfg.Open.Dec()
	}
	if p.onClosed != nil && s.Invoices > 0 {
		p.onClosed(ctx, s)
	}
}

// Close closes every open session (on shutdown), so that their UPOs can be fetched.
func (p *Pool) Close(ctx context.Context) { p.closeWhere(ctx, func(*pooled) bool { return true }) }

// CloseIdle closes the sessions unused for longer than the CloseIdle setting.
func (p *Pool) CloseIdle(ctx context.Context) {
	if p.cfg.CloseIdle < 0 {
		return
	}
	now := p.now()
	p.closeWhere(ctx, func(e *pooled) bool { return now.Sub(e.lastUsed) >= p.cfg.CloseIdle })
}

// RunIdleCloser closes idle sessions, and the sessions stopped replicas left open, until ctx ends.
func (p *Pool) RunIdleCloser(ctx context.Context) {
	every := 15 * time.Second
	if p.cfg.CloseIdle > 0 {
		every = min(max(p.cfg.CloseIdle/4, 100*time.Millisecond), every)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.CloseIdle(ctx)
			p.CloseOrphans(ctx)
		}
	}
}

// CloseOrphans closes the sessions other replicas left open when they died: their ledger
// entries were not refreshed for longer than the owner would have kept them idle.
func (p *Pool) CloseOrphans(ctx context.Context) {
	if p.cfg.Ledger == nil {
		return
	}
	log := zerolog.Ctx(ctx)
	stale := max(p.cfg.CloseIdle, 0) + ledgerRefresh + time.Minute
	orphans, err := p.cfg.Ledger.Orphans(ctx, stale)
	if err != nil {
		log.Warn().Err(err).Msg("listing orphaned sessions failed")
		return
	}
	for _, o := range orphans {
		p.mu.Lock()
		ours := p.held[o.SessionID]
		p.mu.Unlock()
		if ours {
			continue
		}
		if ok, err := p.cfg.Ledger.Claim(ctx, o); err != nil || !ok {
			continue // another replica took it
		}
		client, err := p.clients(ctx, o.ContextNIP)
		if err != nil {
			log.Warn().Err(err).Str("session_id", o.SessionID).Msg("closing an orphaned session: no client")
			continue
		}
		_, err = client.CloseSession(ctx, o.SessionID)
		if err != nil && !isSessionGone(err) {
			// Claimed by us now: a later round retries once the entry is stale again.
			log.Warn().Err(err).Str("session_id", o.SessionID).Msg("closing an orphaned session failed")
			continue
		}
		log.Info().Str("session_id", o.SessionID).Int("sent", o.Sent).Msg("closed a session a stopped replica left open")
		if err := p.cfg.Ledger.Forget(ctx, o.ContextNIP, o.SessionID); err != nil {
			log.Warn().Err(err).Msg("removing the session from the ledger failed")
		}
		if p.onClosed != nil {
			// Announced whatever the recorded count: the poller lets go of a session without a UPO.
			p.onClosed(ctx, ClosedSession{ContextNIP: o.ContextNIP, SessionID: o.SessionID, Invoices: o.Sent})
		}
	}
}

func (p *Pool) closeWhere(ctx context.Context, match func(*pooled) bool) {
	p.mu.Lock()
	entries := make(map[string]*pooled, len(p.contexts))
	for k, v := range p.contexts {
		entries[k] = v
	}
	p.mu.Unlock()
	for nip, e := range entries {
		// A session in use is not idle: skip it rather than wait for its send.
		if !e.mu.TryLock() {
			continue
		}
		if e.session != nil && match(e) {
			p.closeLocked(ctx, nip, e)
		}
		e.mu.Unlock()
	}
}

package ksefconn

import (
	"context"
	"net/http"

	"github.com/ksef-pipeline/ksef-pipeline/internal/ratelimit"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// Hooks observe every client (metrics, tracing).
type Hooks struct {
	// Transport wraps the clients' HTTP transport (tracing spans).
	Transport func(http.RoundTripper) http.RoundTripper
	// LimitWait is called when a call of op finds no free request slot: it then waits for one,
	// or gives up with a *ratelimit.WaitError when the slot is too far away.
	LimitWait func(op ksef.Operation)
}

// SetHooks installs h. Call it before the first For: clients handed out earlier keep the old
// transport and limiter.
func (c *Clients) SetHooks(h Hooks) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h.Transport != nil {
		hc := *c.http
		hc.Transport = h.Transport(hc.Transport)
		c.http = &hc
	}
	c.limitWait = h.LimitWait
}

// observedLimiter reports calls that must wait for a slot.
type observedLimiter struct {
	ksef.Limiter
	l      *ratelimit.Limiter
	nip    string
	notify func(ksef.Operation)
}

func (o observedLimiter) Wait(ctx context.Context, op ksef.Operation) error {
	// Reserve takes a free slot at once (as the wrapped Wait would); only when there is none
	// does the call wait, and the wrapped Wait asks again.
	d, err := o.l.Reserve(ctx, o.nip, op)
	if err != nil || d == 0 {
		return err
	}
	o.notify(op)
	return o.Limiter.Wait(ctx, op)
}

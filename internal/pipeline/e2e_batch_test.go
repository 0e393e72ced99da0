package pipeline_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/invoicestate"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// batchKill forwards KSeF requests and kills the first process (closes its NATS connection, so
// nothing it holds is acked or handed back) at one point of its first batch package.
type batchKill struct {
	at      string // "upload": as the first part goes up (it never arrives); "close": once KSeF closed the session
	kill    func()
	once    sync.Once
	killed  chan struct{}
	session atomic.Value // the batch session whose part went up
}

func (k *batchKill) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/upload/") {
		k.session.CompareAndSwap(nil, strings.Split(strings.TrimPrefix(req.URL.Path[strings.Index(req.URL.Path, "/upload/"):], "/upload/"), "/")[0])
		if k.at == "upload" {
			k.fire()
			return nil, errors.New("killed while uploading")
		}
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if s, ok := k.session.Load().(string); ok && k.at == "close" && err == nil && resp.StatusCode == http.StatusOK &&
		req.URL.Path == "/v2/sessions/"+s+"/close" {
		k.fire()
	}
	return resp, err
}

func (k *batchKill) fire() {
	k.once.Do(func() {
		k.kill()
		close(k.killed)
	})
}

// TestE2EBatchAssemblerKilledNotSentTwice kills the sender's process after its batch package was
// declared to KSeF (the session opened and recorded in every invoice's state) and before any
// queue message was acked, then starts a new process: the redelivered queue items wait for the
// first package's lease, reconcile with its session's invoice list, and every invoice reaches
// KSeF exactly once: in the first session when it was closed, else in a new package.
func TestE2EBatchAssemblerKilledNotSentTwice(t *testing.T) {
	for _, tc := range []struct {
		at    string
		opens int // batch sessions KSeF opened in all
	}{
		{at: "upload", opens: 2},
		{at: "close", opens: 1},
	} {
		t.Run(tc.at, func(t *testing.T) {
			testBatchKilled(t, tc.at, tc.opens)
		})
	}
}

func testBatchKilled(t *testing.T, at string, wantOpens int) {
	const total = 60
	var first atomic.Pointer[pipeline.Runtime]
	hook := &batchKill{at: at, killed: make(chan struct{}), kill: func() { first.Load().NC.Close() }}
	p := start(t, options{
		emulator: emulator.Config{Limits: emulator.LimitConfig{Multiplier: 1}},
		settings: func(s *pipeline.Settings) {
			s.KSeF.Limits = "production" // 10 online sends a second: the rest is queued for a batch
			s.KSeF.MaxLimitWait = time.Second
			s.AckWait = 2 * time.Second
			s.Batch.Lease = 8 * time.Second
			s.VisualizeAccepted = false
		},
		ksefOptions: []ksef.Option{ksef.WithHTTPClient(&http.Client{Transport: hook, Timeout: 30 * time.Second})},
	})
	first.Store(p.rt)
	stop := p.run(p.rt, pipeline.Sender, pipeline.Poller)
	seller := demo.Sellers[0]
	begin := time.Now()
	subs := make([]*submission, 0, total)
	ids := make([]string, 0, total)
	for n := 1; n <= total; n++ {
		s := p.newSubmission(fmt.Sprintf("KILL-%02d", n), seller, n, viaInline, begin)
		s.ev.Visualize = false
		p.publish(s.ev)
		subs = append(subs, s)
		ids = append(ids, s.id)
	}
	select {
	case <-hook.killed:
	case <-time.After(time.Minute):
		t.Fatal("no batch package reached the kill point within a minute")
	}
	if err := stop(); err != nil {
		t.Logf("the killed process's workers ended with: %v", err)
	}

	// A new process: new connections, a new assembler.
	rt, err := pipeline.Open(t.Context(), p.rt.Settings, p.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	p.rt = rt
	inBatch := 0
	for _, s := range subs {
		st, err := rt.States.State(t.Context(), invoicestate.Key(seller, s.id))
		if err != nil {
			t.Fatal(err)
		}
		if st != nil && st.Status == invoicestate.Sending && st.Mode == events.ModeBatch {
			inBatch++
		}
	}
	if inBatch == 0 {
		t.Fatal("no invoice's state records the killed package's session: the kill did not come after the session was recorded")
	}
	if n := p.em.Requests(ksef.OpSessionOpenBatch, 200); n != 1 {
		t.Fatalf("%d batch sessions opened before the kill, want 1", n)
	}
	t.Logf("killed with %d invoices recorded in batch session %v", inBatch, hook.session.Load())
	restarted := time.Now()
	p.run(rt, pipeline.Sender, pipeline.Poller)
	evs := p.await(2*time.Minute, "every invoice settled after the restart", settled(ids))
	t.Logf("killed %s after the first submission; all settled %s after the restart", restarted.Sub(begin).Round(time.Second), time.Since(restarted).Round(time.Second))
	acc := byInvoice[*events.InvoiceAccepted](evs)
	if len(acc) != total {
		t.Fatalf("%d accepted, want %d\n%s", len(acc), total, summary(evs))
	}
	for _, s := range subs {
		if n := p.em.SendCount(seller, s.req.InvoiceNumber, kcrypto.SHA256Base64(s.xml)); n != 1 {
			t.Errorf("%s reached KSeF %d times, want exactly once", s.id, n)
		}
		if n := distinctIDs[*events.InvoiceSent](evs, s.id); n != 1 {
			t.Errorf("%s: %d distinct invoice.sent events, want 1", s.id, n)
		}
	}
	if n := p.em.Requests(ksef.OpSessionOpenBatch, 200); n != wantOpens {
		t.Errorf("%d batch sessions opened, want %d", n, wantOpens)
	}
	if n := p.em.Requests(ksef.OpSessionInvoices, 200); n < 1 {
		t.Error("the restarted assembler did not reconcile with ksefSessionInvoices")
	}
	closed := map[string]bool{}
	for _, c := range eventsOf[*events.SessionClosed](evs) {
		closed[c.SessionID] = true
	}
	if s, _ := hook.session.Load().(string); at == "close" && !closed[s] {
		t.Errorf("no session.closed for the killed process's batch session %s: its UPO would not be fetched", s)
	}
	if dl := eventsOf[*events.DeadLettered](evs); len(dl) > 0 {
		t.Errorf("%d dead letters\n%s", len(dl), summary(evs))
	}
	p.consumersIdle(30*time.Second, pipeline.SenderBatch)
}

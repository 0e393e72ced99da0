package sender_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/invoicestate"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/rulecorpus"
	"github.com/ksef-pipeline/ksef-pipeline/internal/sender"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// idRecorder publishes through the real publisher and keeps, per invoice id, the events the
// sender published.
type idRecorder struct {
	pub *natsx.Publisher
	mu  sync.Mutex
	by  map[string][]events.Event
}

func (r *idRecorder) Publish(ctx context.Context, ev events.Event, hdr nats.Header) error {
	r.mu.Lock()
	id := ev.Common().InvoiceID
	r.by[id] = append(r.by[id], ev)
	r.mu.Unlock()
	return r.pub.Publish(ctx, ev, hdr)
}

func (r *idRecorder) of(id string) []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.by[id]
}

// rulesEnv is a sender over an in-process JetStream, local storage and an emulator holding a
// token for each seller.
type rulesEnv struct {
	rec      *idRecorder
	states   *invoicestate.Store
	store    storage.Store
	buckets  storage.Buckets
	clients  func(context.Context, string) (*ksef.Client, error)
	validate *fa3.Validator
}

func newRulesEnv(t *testing.T, sellers []string) *rulesEnv {
	t.Helper()
	ctx := context.Background()
	js := testenv.JetStream(t)
	if _, err := natsx.EnsureStreams(ctx, js, natsx.Config{}); err != nil {
		t.Fatal(err)
	}
	kv, err := natsx.EnsureKV(ctx, js, "states-rules", 0)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	for _, s := range sellers {
		tokens["t-"+s] = s
	}
	em, err := emulator.New(emulator.Config{Tokens: tokens, SchemaDir: testenv.SchemaDir(t),
		ProcessingDelay: -1, StorageDelay: -1, Limits: emulator.LimitConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { em.Close() })
	srv := httptest.NewServer(em.Handler())
	t.Cleanup(srv.Close)
	var mu sync.Mutex
	clients := map[string]*ksef.Client{}
	local, buckets, validator := localStore(t)
	return &rulesEnv{
		rec:    &idRecorder{pub: natsx.NewPublisher(js, natsx.Config{}), by: map[string][]events.Event{}},
		states: invoicestate.NewStore(natsx.NewCAS(kv), nil), store: local, buckets: buckets, validate: validator,
		clients: func(_ context.Context, nip string) (*ksef.Client, error) {
			mu.Lock()
			defer mu.Unlock()
			if c := clients[nip]; c != nil {
				return c, nil
			}
			c, err := ksef.New(srv.URL, ksef.WithToken("t-"+nip))
			clients[nip] = c
			return c, err
		},
	}
}

func (v *rulesEnv) sender(t *testing.T, now time.Time, mutate func(*sender.Config)) *sender.Sender {
	cfg := sender.Config{Layout: storage.Layout{Buckets: v.buckets}, Pool: sender.PoolConfig{CloseIdle: -1},
		Now: func() time.Time { return now }}
	if mutate != nil {
		mutate(&cfg)
	}
	s := sender.New(cfg, v.clients, v.states, v.store, v.validate, v.rec)
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// submit submits xml as invoice id of seller and returns what the sender published for it.
func (v *rulesEnv) submit(t *testing.T, s *sender.Sender, id, seller string, xml []byte, at time.Time) []events.Event {
	t.Helper()
	ev := &events.InvoiceSubmitted{InlineXML: xml}
	ev.InvoiceID, ev.ContextNIP, ev.OccurredAt = id, seller, events.At(at)
	if err := s.Submit(context.Background(), ev); err != nil {
		t.Fatalf("%s: Submit: %v", id, err)
	}
	return v.rec.of(id)
}

// TestRuleCorpusThroughSender submits every case of the rule corpus to the sender: what KSeF
// would certainly refuse and a client can tell (XML rules, schema, size, the issue date, NIP
// check digits on production) is rejected with KSeF's status before anything is sent; the rest
// is sent (invoices with attachments queued for a batch), with warnings for arithmetic KSeF
// does not check.
func TestRuleCorpusThroughSender(t *testing.T) {
	y, m, d := time.Now().In(fa3.Warsaw).Date()
	day := time.Date(y, m, d, 12, 0, 0, 0, fa3.Warsaw)
	samples, err := rulecorpus.Load(filepath.Join(testenv.SharedDir(t), "ksef", "samples", "valid"))
	if err != nil {
		t.Fatal(err)
	}
	cases, err := rulecorpus.Build(samples, day)
	if err != nil {
		t.Fatal(err)
	}
	var sellers []string
	for _, c := range cases {
		sellers = append(sellers, c.Seller)
	}
	env := newRulesEnv(t, sellers)
	var warned sync.Map
	count := func(n int) { warned.Store(time.Now(), n) }
	test := env.sender(t, day, func(c *sender.Config) { c.Warned = count })
	prod := env.sender(t, day, func(c *sender.Config) { c.Warned, c.CheckNIPs = count, true })
	warns := 0
	for i, c := range cases {
		s := test
		if c.Env == rulecorpus.EnvProd {
			s = prod
		}
		id := fmt.Sprintf("rc-%d", i)
		got := env.submit(t, s, id, c.Seller, c.XML, day)
		if len(got) != 1 {
			t.Errorf("%s: %d events published, want 1", c.Name, len(got))
			continue
		}
		refuse := c.Local && c.Status != rulecorpus.Accepted
		switch ev := got[0].(type) {
		case *events.InvoiceRejected:
			if !refuse || ev.Code != c.Status || ev.Stage != events.StageValidate || len(ev.Details) == 0 {
				t.Errorf("%s: rejected %d %s %v, want status %d (refused locally: %v)", c.Name, ev.Code, ev.Description, ev.Details, c.Status, refuse)
			}
		case *events.BatchQueued:
			if refuse || !c.Attachments {
				t.Errorf("%s: queued for a batch, want status %d (refused locally: %v, attachments: %v)", c.Name, c.Status, refuse, c.Attachments)
			}
		case *events.InvoiceSent:
			if refuse || c.Attachments || ev.Mode != events.ModeOnline {
				t.Errorf("%s: sent %s, want status %d (refused locally: %v, attachments: %v)", c.Name, ev.Mode, c.Status, refuse, c.Attachments)
			}
			if c.Warns && len(ev.Warnings) == 0 {
				t.Errorf("%s: sent without warnings", c.Name)
			}
			if len(ev.Warnings) > 0 {
				warns++
			}
		default:
			t.Errorf("%s: published %T", c.Name, ev)
		}
	}
	n := 0
	warned.Range(func(any, any) bool { n++; return true })
	if warns == 0 || n < warns {
		t.Errorf("%d invoices sent with warnings, %d reported to the metric hook", warns, n)
	}
	t.Logf("%d cases, %d sent with warnings", len(cases), warns)
}

// TestBlockOnWarnings: with BlockOnWarnings an invoice KSeF would take, but whose totals do not
// add up, is rejected by the pipeline itself (code 0) with the warnings as details; without it,
// it is sent with them.
func TestBlockOnWarnings(t *testing.T) {
	y, m, d := time.Now().In(fa3.Warsaw).Date()
	day := time.Date(y, m, d, 12, 0, 0, 0, fa3.Warsaw)
	samples, err := rulecorpus.Load(filepath.Join(testenv.SharedDir(t), "ksef", "samples", "valid"))
	if err != nil {
		t.Fatal(err)
	}
	cases, err := rulecorpus.Build(samples, day)
	if err != nil {
		t.Fatal(err)
	}
	var c *rulecorpus.Case
	for i := range cases {
		if cases[i].Warns && !cases[i].Attachments {
			c = &cases[i]
			break
		}
	}
	if c == nil {
		t.Fatal("no case with warnings")
	}
	env := newRulesEnv(t, []string{c.Seller})
	for _, block := range []bool{false, true} {
		t.Run(fmt.Sprint("block=", block), func(t *testing.T) {
			s := env.sender(t, day, func(cfg *sender.Config) { cfg.BlockOnWarnings = block })
			got := env.submit(t, s, fmt.Sprint("block-", block), c.Seller, c.XML, day)
			if len(got) != 1 {
				t.Fatalf("%d events", len(got))
			}
			switch ev := got[0].(type) {
			case *events.InvoiceRejected:
				if !block || ev.Code != 0 || !strings.Contains(ev.Description, "warnings") || len(ev.Details) == 0 {
					t.Fatalf("rejected: %+v", ev)
				}
			case *events.InvoiceSent:
				if block || len(ev.Warnings) == 0 {
					t.Fatalf("sent with warnings %q", ev.Warnings)
				}
			default:
				t.Fatalf("published %T", ev)
			}
		})
	}
}

// TestOfflineInvoices: an invoice issued offline goes to a batch package (the seed's API can say
// "offline" only when opening a batch session), its state saying so for the assembler; with
// batch sessions off it is rejected with the reason.
func TestOfflineInvoices(t *testing.T) {
	y, m, d := time.Now().In(fa3.Warsaw).Date()
	day := time.Date(y, m, d, 12, 0, 0, 0, fa3.Warsaw)
	samples, err := rulecorpus.Load(filepath.Join(testenv.SharedDir(t), "ksef", "samples", "valid"))
	if err != nil {
		t.Fatal(err)
	}
	cases, err := rulecorpus.Build(samples, day)
	if err != nil {
		t.Fatal(err)
	}
	var c *rulecorpus.Case
	for i := range cases {
		if cases[i].Rule == rulecorpus.RuleAsPublished && !cases[i].Attachments {
			c = &cases[i]
			break
		}
	}
	if c == nil {
		t.Fatal("no sample without attachments")
	}
	env := newRulesEnv(t, []string{c.Seller})
	for _, tc := range []struct {
		name    string
		offline bool
		batch   bool
	}{
		{"online invoice", false, true},
		{"offline invoice", true, true},
		{"offline invoice, batch off", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := env.sender(t, day, func(cfg *sender.Config) { cfg.Batch.Disabled = !tc.batch })
			id := "offline-" + strings.ReplaceAll(tc.name, " ", "-")
			ev := &events.InvoiceSubmitted{InlineXML: c.XML, Offline: tc.offline}
			ev.InvoiceID, ev.ContextNIP, ev.OccurredAt = id, c.Seller, events.At(day)
			if err := s.Submit(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			got := env.rec.of(id)
			if len(got) != 1 {
				t.Fatalf("%d events", len(got))
			}
			st, err := env.states.State(context.Background(), invoicestate.Key(c.Seller, id))
			if err != nil {
				t.Fatal(err)
			}
			switch ev := got[0].(type) {
			case *events.InvoiceSent:
				if tc.offline {
					t.Fatalf("offline invoice sent %s", ev.Mode)
				}
			case *events.BatchQueued:
				if !tc.offline || !tc.batch || st == nil || !st.Offline || st.Status != invoicestate.BatchQueued {
					t.Fatalf("queued for a batch, state %+v", st)
				}
			case *events.InvoiceRejected:
				if !tc.offline || tc.batch || !strings.Contains(ev.Description, "batch session") {
					t.Fatalf("rejected: %+v", ev)
				}
			default:
				t.Fatalf("published %T", ev)
			}
		})
	}
}

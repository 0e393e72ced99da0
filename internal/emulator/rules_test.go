package emulator

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/rulecorpus"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// corpusDay is the day the corpus is accepted on: noon in Poland today, so that a test run
// across midnight does not move P_1's neighbours.
func corpusDay() time.Time {
	y, m, d := time.Now().In(fa3.Warsaw).Date()
	return time.Date(y, m, d, 12, 0, 0, 0, fa3.Warsaw)
}

func corpus(t *testing.T, day time.Time) []rulecorpus.Case {
	t.Helper()
	samples, err := rulecorpus.Load(filepath.Join(sharedDir(t), "ksef", "samples", "valid"))
	if err != nil {
		t.Fatal(err)
	}
	cases, err := rulecorpus.Build(samples, day)
	if err != nil {
		t.Fatal(err)
	}
	return cases
}

// TestRuleCorpus sends every case of the rule corpus (built from the valid samples) as KSeF
// would receive it, online or in a batch, in the test and the production environment, and
// checks the status KSeF gives.
func TestRuleCorpus(t *testing.T) {
	day := corpusDay()
	all := corpus(t, day)
	for _, environment := range []string{"test", EnvironmentProd} {
		t.Run(environment, func(t *testing.T) {
			var cases []rulecorpus.Case
			tokens := map[string]string{}
			for _, c := range all {
				if (environment == EnvironmentProd) != (c.Env == rulecorpus.EnvProd) {
					continue
				}
				cases = append(cases, c)
				tokens["t-"+c.Seller] = c.Seller
			}
			v := newEnv(t, func(c *Config) { c.Tokens, c.Environment = tokens, environment })
			v.clock.Advance(day.Sub(v.clock.Now()))
			r := newCorpusRun(v)

			// Duplicates need their first invoice accepted before they are sent.
			var priors []*corpusSend
			for _, c := range cases {
				if c.Prior != nil {
					priors = append(priors, r.add(c.Seller, c.Prior, c.Batch))
				}
			}
			r.run()
			for _, p := range priors {
				if p.status.Code != 200 {
					t.Fatalf("first invoice of a duplicate case: status %d %s", p.status.Code, derefS(p.status.Details))
				}
			}
			sends := make([]*corpusSend, len(cases))
			for i, c := range cases {
				sends[i] = r.add(c.Seller, c.XML, c.Batch)
			}
			r.run()
			for i, c := range cases {
				got := sends[i].status
				if int(got.Code) != c.Status {
					t.Errorf("%s: status %d (%s), want %d", c.Name, got.Code, derefS(got.Details), c.Status)
				} else if c.Status != 200 && derefS(got.Details) == "" {
					t.Errorf("%s: refused without details", c.Name)
				}
			}
			t.Logf("%d cases", len(cases))
		})
	}
}

// TestRuleCorpusValidate runs the cases through ksefInvoiceValidate, which checks what the
// document alone decides (XML rules, schema, size): exactly the 430 cases are refused.
func TestRuleCorpusValidate(t *testing.T) {
	v := newEnv(t, nil)
	for _, c := range corpus(t, corpusDay()) {
		if c.Env == rulecorpus.EnvProd {
			continue
		}
		code, _, body := v.do(http.MethodPost, "/v2/invoices/validate", tokA, "text/xml", bytes.NewReader(c.XML))
		refused := code == http.StatusBadRequest || code == http.StatusRequestEntityTooLarge
		if want := c.Status == rulecorpus.Invalid; refused != want || (!refused && code != http.StatusOK) {
			t.Errorf("%s: HTTP %d %.200s, want refused=%v", c.Name, code, body, want)
		}
	}
}

// corpusSend is one invoice of a corpus run and, after run, its status.
type corpusSend struct {
	seller string
	xml    []byte
	batch  bool
	status ksefapi.StatusInfo
}

// corpusRun sends invoices in one online session per seller and one batch per seller.
type corpusRun struct {
	v       *env
	online  map[string]*onlineSession
	pending []*corpusSend
}

func newCorpusRun(v *env) *corpusRun {
	return &corpusRun{v: v, online: map[string]*onlineSession{}}
}

func (r *corpusRun) add(seller string, xml []byte, batch bool) *corpusSend {
	s := &corpusSend{seller: seller, xml: xml, batch: batch}
	r.pending = append(r.pending, s)
	return s
}

// run sends what was added, waits for the outcomes and records them.
func (r *corpusRun) run() {
	v := r.v
	t := v.t
	t.Helper()
	ids := map[*corpusSend]string{}
	batches := map[string][]*corpusSend{}
	var sellers []string
	for _, s := range r.pending {
		if s.batch {
			if batches[s.seller] == nil {
				sellers = append(sellers, s.seller)
			}
			batches[s.seller] = append(batches[s.seller], s)
			continue
		}
		sess := r.online[s.seller]
		if sess == nil {
			sess = v.open("t-" + s.seller)
			r.online[s.seller] = sess
		}
		ids[s] = sess.send(s.xml)
	}
	type batchRun struct {
		id    string
		token string
		sends []*corpusSend
	}
	var runs []batchRun
	for _, seller := range sellers {
		sends := batches[seller]
		files := map[string][]byte{}
		for i, s := range sends {
			files[fmt.Sprintf("invoice-%03d.xml", i+1)] = s.xml
		}
		pkg := v.pack(zipOf(t, files), 1)
		token := "t-" + seller
		open := v.openBatch(token, pkg.request())
		for i, info := range open.PartUploadRequests {
			if code, body := upload(t, info, pkg.parts[i], nil); code != http.StatusCreated {
				t.Fatalf("part %d: HTTP %d %s", i+1, code, body)
			}
		}
		cl, err := v.client(token).KsefSessionCloseWithResponse(context.Background(), open.Id)
		if err != nil || cl.JSON200 == nil {
			t.Fatalf("closing the batch: %v", err)
		}
		runs = append(runs, batchRun{open.Id, token, sends})
	}
	v.settle()
	for _, s := range r.pending {
		if !s.batch {
			s.status = r.online[s.seller].status(ids[s]).Status
		}
	}
	for _, b := range runs {
		list, err := v.client(b.token).KsefSessionInvoicesWithResponse(context.Background(), b.id)
		if err != nil || list.JSON200 == nil || len(list.JSON200.Invoices) != len(b.sends) {
			t.Fatalf("batch invoices: %v %s", err, list.Body)
		}
		for _, inv := range list.JSON200.Invoices {
			var n int
			fmt.Sscan(inv.Ordinal, &n)
			b.sends[n-1].status = inv.Status
		}
	}
	r.pending = nil
}

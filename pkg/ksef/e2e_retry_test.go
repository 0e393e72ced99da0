package ksef_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// recorder is a client's view of its attempts and backoff sleeps, in order. Sleeps return at
// once: the emulator's injected faults do not depend on time.
type recorder struct {
	mu     sync.Mutex
	events []event
}

type event struct {
	call  *ksef.Call // an attempt, or
	sleep time.Duration
}

func (r *recorder) options() []ksef.Option {
	return []ksef.Option{
		ksef.WithObserver(func(c ksef.Call) {
			r.mu.Lock()
			r.events = append(r.events, event{call: &c})
			r.mu.Unlock()
		}),
		ksef.WithClock(time.Now, func(ctx context.Context, d time.Duration) error {
			r.mu.Lock()
			r.events = append(r.events, event{sleep: d})
			r.mu.Unlock()
			return ctx.Err()
		}),
	}
}

// calls returns the attempts of op (all operations when op is "").
func (r *recorder) calls(op ksef.Operation) []ksef.Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ksef.Call
	for _, e := range r.events {
		if e.call != nil && (op == "" || e.call.Operation == op) {
			out = append(out, *e.call)
		}
	}
	return out
}

// answered is how many answers the emulator gave to op, whatever their status.
func answered(em *emulator.Emulator, op ksef.Operation) int {
	n := 0
	for _, c := range em.Stats().Requests[op] {
		n += c
	}
	return n
}

// TestIdempotentCallsRetryThroughFaults runs a seller's and a buyer's whole day against an
// emulator that answers a third of the calls with a 5xx (HTML pages, empty bodies, JSON) and a
// fifth with 429: every idempotent call gets through by retrying, waiting out Retry-After.
func TestIdempotentCallsRetryThroughFaults(t *testing.T) {
	var faulted []ksef.Operation
	for _, op := range ksef.Operations() {
		if op.Idempotent() {
			faulted = append(faulted, op)
		}
	}
	faulted = append(faulted, ksef.OpBatchPartUpload)
	h := startEmulator(t, func(c *emulator.Config) {
		c.QueryMaxPartSize = 1
		c.Faults = emulator.Faults{ServerErrorRate: 0.3, TooManyRate: 0.2, RetryAfter: 2 * time.Second, Ops: faulted}
	})
	ctx := context.Background()
	rec := &recorder{}
	policy := ksef.WithRetryPolicy(ksef.RetryPolicy{MaxAttempts: 12, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond, MaxRetryAfter: 30 * time.Second})
	seller := h.client(t, tokA, append(rec.options(), policy)...)
	buyer := h.client(t, tokB, append(rec.options(), policy)...)
	from := time.Now().Add(-time.Minute)

	gen, err := seller.GenerateInvoice(ctx, invoiceRequest(nipA, nipB, "FV/E2E/FAULTS/1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seller.ValidateInvoice(ctx, []byte(gen.InvoiceData)); err != nil {
		t.Fatal(err)
	}
	pdf, _, err := seller.VisualizeInvoice(ctx, ksefapi.KsefInvoiceVisualizeRequest{InvoiceData: gen.InvoiceData, OutputFormat: ksefapi.Pdf, OutputLanguage: ksefapi.Pl})
	if err != nil {
		t.Fatal(err)
	}
	pdf.Close()

	s, err := seller.OpenSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sent := map[string][]byte{} // invoice id -> XML
	for _, xml := range [][]byte{[]byte(gen.InvoiceData), invoiceXML(t, nipA, nipB, "FV/E2E/FAULTS/2")} {
		r, err := s.Send(ctx, xml)
		if err != nil {
			t.Fatal(err)
		}
		sent[r.Id] = xml
	}
	byNumber := map[string][]byte{} // KSeF number -> XML
	for id, xml := range sent {
		st := awaitStored(t, h, seller, id)
		byNumber[deref(st.KsefNumber)] = xml
	}
	if list, err := seller.SessionInvoices(ctx, s.ID); err != nil || len(list) != len(sent) {
		t.Fatalf("session invoices: %d, %v", len(list), err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	awaitSession(t, h, seller, s.ID, func(code int32) bool { return code == 200 })
	if u := readUPO(t, seller, s.ID); len(u.Documents) != len(sent) {
		t.Errorf("UPO lists %d invoices", len(u.Documents))
	}
	for num, xml := range byNumber {
		body, _, err := buyer.GetInvoice(ctx, num)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(body)
		body.Close()
		if !bytes.Equal(got, xml) {
			t.Errorf("%s: downloaded bytes differ", num)
		}
	}
	batchID := sendBatch(t, seller, []string{"FV/E2E/FAULTS/B1", "FV/E2E/FAULTS/B2"}, func(b []byte) io.Reader { return bytes.NewReader(b) })
	awaitSession(t, h, seller, batchID, func(code int32) bool { return code == 200 })
	batch, err := seller.SessionInvoices(ctx, batchID)
	if err != nil || len(batch) != 2 {
		t.Fatalf("batch invoices: %d, %v", len(batch), err)
	}
	for _, li := range batch {
		awaitStored(t, h, seller, deref(li.InvoiceId))
	}
	downloaded := runQuery(t, buyer, from, ksefapi.Subject2, len(sent)+2)
	for num, xml := range byNumber {
		if !bytes.Equal(downloaded[num], xml) {
			t.Errorf("query: %s differs", num)
		}
	}

	// The faults happened and were retried through, every kind of them.
	stats := h.em.Stats()
	if stats.Faults["5xx"] == 0 || stats.Faults["429"] == 0 {
		t.Fatalf("faults injected: %v", stats.Faults)
	}
	statuses := map[int]bool{}
	retried := map[ksef.Operation]bool{}
	for _, c := range rec.calls("") {
		if c.Retrying {
			statuses[c.HTTPStatus] = true
			retried[c.Operation] = true
		}
		if c.Operation == ksef.OpInvoiceSend && c.HTTPStatus != 200 {
			t.Errorf("send was faulted: %+v", c)
		}
	}
	for _, s := range []int{429, 500, 502, 503} {
		if !statuses[s] {
			t.Errorf("never retried an HTTP %d; retried %v", s, statuses)
		}
	}
	if len(retried) < 8 {
		t.Errorf("retries in only %d operations: %v", len(retried), retried)
	}
	// Every 429 was followed by a wait of at least its Retry-After.
	rec.mu.Lock()
	for i, e := range rec.events {
		if e.call != nil && e.call.HTTPStatus == 429 && e.call.Retrying {
			if i+1 >= len(rec.events) || rec.events[i+1].sleep < 2*time.Second {
				t.Errorf("after a 429 of %s: %+v", e.call.Operation, rec.events[i+1:min(i+2, len(rec.events))])
			}
		}
	}
	rec.mu.Unlock()
	// The client's attempts are the emulator's answers, one for one.
	for _, op := range append(ksef.Operations(), ksef.OpBatchPartUpload) {
		if got, want := len(rec.calls(op)), answered(h.em, op); got != want {
			t.Errorf("%s: the client made %d attempts, the emulator answered %d", op, got, want)
		}
	}
}

// sendBatch sends the invoices from A to B in a batch session of two parts, uploading each
// part's body as body makes it, closes the session and returns its id.
func sendBatch(t *testing.T, c *ksef.Client, numbers []string, body func([]byte) io.Reader) string {
	t.Helper()
	ctx := context.Background()
	id, parts, uploads := openBatch(t, c, numbers)
	for _, u := range uploads {
		p := parts[u.Ordinal-1]
		if err := c.UploadBatchPart(ctx, u, body(p), int64(len(p))); err != nil {
			t.Fatalf("part %d: %v", u.Ordinal, err)
		}
	}
	if ok, err := c.CloseSession(ctx, id); err != nil || !ok {
		t.Fatalf("closing the batch: %v %v", ok, err)
	}
	return id
}

// openBatch opens a batch session for the invoices and returns it, the encrypted parts and
// where to upload them.
func openBatch(t *testing.T, c *ksef.Client, numbers []string) (string, [][]byte, []ksefapi.PartUploadInfo) {
	t.Helper()
	files := map[string][]byte{}
	var names []string
	for _, n := range numbers {
		name := strings.ReplaceAll(n, "/", "_") + ".xml"
		files[name] = invoiceXML(t, nipA, nipB, n)
		names = append(names, name)
	}
	pkg := zipFiles(t, names, files)
	enc, key, err := c.NewEncryption(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer key.Zero()
	bi := ksefapi.BatchInfo{BatchSize: int64(len(pkg)), BatchHash: kcrypto.SHA256Base64(pkg)}
	var parts [][]byte
	for i, p := range [][]byte{pkg[:len(pkg)/2], pkg[len(pkg)/2:]} {
		ct, err := kcrypto.Encrypt(p, key.Key, key.IV)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, ct)
		bi.BatchParts = append(bi.BatchParts, ksefapi.BatchPartInfo{Ordinal: int32(i + 1), PartSize: int64(len(ct)), PartHash: kcrypto.SHA256Base64(ct)})
	}
	r, err := c.OpenBatchSession(context.Background(), ksefapi.KsefSessionOpenBatchRequest{InvoiceVersion: ksefapi.V3, EncryptionInfo: enc, BatchInfo: bi})
	if err != nil {
		t.Fatal(err)
	}
	return r.Id, parts, r.PartUploadRequests
}

// TestUploadRetriesOnlyRewindableBodies: a part upload is repeated after a 5xx only when its
// body can be read again.
func TestUploadRetriesOnlyRewindableBodies(t *testing.T) {
	h := startEmulator(t, func(c *emulator.Config) {
		c.Faults = emulator.Faults{ServerErrorRate: 1, Ops: []ksef.Operation{ksef.OpBatchPartUpload}}
	})
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		body     func([]byte) io.Reader
		attempts int
	}{
		{"bytes.Reader", func(b []byte) io.Reader { return bytes.NewReader(b) }, 3},
		{"a stream", func(b []byte) io.Reader { return io.MultiReader(bytes.NewReader(b)) }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			c := h.client(t, tokA, append(rec.options(), ksef.WithRetryPolicy(ksef.RetryPolicy{MaxAttempts: 3, MaxRetryAfter: time.Minute}))...)
			before := answered(h.em, ksef.OpBatchPartUpload)
			_, parts, uploads := openBatch(t, c, []string{"FV/E2E/UPLOAD/" + tc.name})
			err := c.UploadBatchPart(ctx, uploads[0], tc.body(parts[0]), int64(len(parts[0])))
			var e *ksef.Error
			if !errors.As(err, &e) || e.HTTPStatus < 500 || e.Operation != ksef.OpBatchPartUpload {
				t.Fatalf("err = %v, want the last 5xx", err)
			}
			if got := answered(h.em, ksef.OpBatchPartUpload) - before; got != tc.attempts {
				t.Errorf("the emulator saw %d uploads, want %d", got, tc.attempts)
			}
			if got := len(rec.calls(ksef.OpBatchPartUpload)); got != tc.attempts {
				t.Errorf("the client made %d attempts, want %d", got, tc.attempts)
			}
		})
	}
}

// TestSendUnderFaults: a send whose outcome is unknown is never repeated by the client and
// wraps ErrAmbiguous, and the emulator shows whether the invoice reached KSeF, so that the
// caller must reconcile; a 429 is repeated, as nothing was processed.
func TestSendUnderFaults(t *testing.T) {
	send := []ksef.Operation{ksef.OpInvoiceSend}
	for _, tc := range []struct {
		name      string
		faults    emulator.Faults
		ambiguous bool
		reached   int // SendCount of each invoice: how often it reached processing
	}{
		{"answer lost after processing", emulator.Faults{AmbiguousRate: 1, Ops: send}, true, 1},
		{"5xx before processing", emulator.Faults{ServerErrorRate: 1, Ops: send}, true, 0},
		{"429", emulator.Faults{TooManyRate: 0.5, RetryAfter: time.Second, Ops: send}, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The default policy would retry a 5xx four times: for a send it must not.
			h, rec, c, s := faultedSession(t, tc.faults)
			ctx := context.Background()
			xmls := map[string][]byte{}
			forms := map[int]bool{}
			for _, n := range []string{"FV/E2E/SEND/1", "FV/E2E/SEND/2", "FV/E2E/SEND/3"} {
				xml := invoiceXML(t, nipA, nipB, n)
				xmls[n] = xml
				calls := len(rec.calls(ksef.OpInvoiceSend))
				_, err := s.Send(ctx, xml)
				made := len(rec.calls(ksef.OpInvoiceSend)) - calls
				if !tc.ambiguous {
					if err != nil {
						t.Fatalf("%s: %v", n, err)
					}
					continue
				}
				var e *ksef.Error
				if !errors.Is(err, ksef.ErrAmbiguous) || !errors.As(err, &e) || !e.Ambiguous || e.HTTPStatus < 500 {
					t.Fatalf("%s: err = %v, want an ambiguous 5xx", n, err)
				}
				forms[e.HTTPStatus] = true
				if made != 1 {
					t.Errorf("%s: the client tried %d times", n, made)
				}
			}
			if tc.ambiguous {
				if n := answered(h.em, ksef.OpInvoiceSend); n != len(xmls) {
					t.Errorf("the emulator got %d sends of %d invoices", n, len(xmls))
				}
				if tc.faults.AmbiguousRate > 0 && (!forms[http.StatusBadGateway] || !forms[http.StatusInternalServerError]) {
					t.Errorf("answers seen: %v, want both the proxy's 502 and the service's 500", forms)
				}
			} else {
				if h.em.Stats().Faults["429"] == 0 {
					t.Fatal("no 429 was injected")
				}
				if got, want := len(rec.calls(ksef.OpInvoiceSend)), answered(h.em, ksef.OpInvoiceSend); got != want || got <= len(xmls) {
					t.Errorf("%d attempts, %d answers for %d invoices", got, want, len(xmls))
				}
			}

			// Reconcile as a caller must: what reached KSeF?
			if err := h.em.WaitIdle(ctx); err != nil {
				t.Fatal(err)
			}
			list, err := c.SessionInvoices(ctx, s.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != tc.reached*len(xmls) {
				t.Fatalf("the session holds %d invoices, want %d", len(list), tc.reached*len(xmls))
			}
			hashes := map[string]bool{}
			for _, li := range list {
				st := awaitFinal(t, h, c, deref(li.InvoiceId))
				if st.Status.Code != int32(ksef.StatusAccepted) {
					t.Errorf("%s: %d %s", deref(st.InvoiceNumber), st.Status.Code, deref(st.Status.Details))
				}
				hashes[deref(st.InvoiceHash)] = true
			}
			for n, xml := range xmls {
				hash := kcrypto.SHA256Base64(xml)
				if got := h.em.SendCount(nipA, n, hash); got != tc.reached {
					t.Errorf("%s reached KSeF %d times, want %d", n, got, tc.reached)
				}
				if hashes[hash] != (tc.reached > 0) {
					t.Errorf("%s listed in the session: %v", n, hashes[hash])
				}
			}
			if slices.ContainsFunc(rec.calls(ksef.OpInvoiceSend), func(c ksef.Call) bool { return c.HTTPStatus >= 500 && c.Retrying }) {
				t.Error("a send answered 5xx was retried")
			}
		})
	}
}

package reliability

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// badCase is one entry of testdata/bad-input/cases.json.
type badCase struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Raw     string `json:"raw"`
	Event   string `json:"event"`
	Invoice *struct {
		File       string `json:"file"`
		Generate   int    `json:"generate"`
		Structured string `json:"structured"`
		Seller     string `json:"seller"`
		Via        string `json:"via"`
		PadTo      int    `json:"pad_to"`
		SHA256     string `json:"sha256"`
		// LongName replaces the first line's name (P_7) with this many characters.
		LongName int `json:"long_name"`
		// Nest puts this many nested elements inside the root.
		Nest int `json:"nest"`
		// Owner, with via object, stores the invoice under that context's keys (not the seller's);
		// Bucket ("upo") stores it in another bucket.
		Owner  string `json:"owner"`
		Bucket string `json:"bucket"`
	} `json:"invoice"`
	// KSeF, when set, makes the emulator answer the case's context hostilely (emulator.Hostile);
	// the context gets a token of its own.
	KSeF *struct {
		Context string `json:"context"`
		Op      string `json:"op"`
		Answer  string `json:"answer"`
		Times   int    `json:"times"`
	} `json:"ksef"`
	Expect struct {
		// rejected, dead_letter, or, for a hostile KSeF's passing faults, accepted (an
		// invoice.accepted) or completed (a query.completed)
		Outcome string `json:"outcome"`
		Stage   string `json:"stage"`
		Kind    string `json:"kind"`
		Code    *int   `json:"code"`
		Reason  string `json:"reason"`
		// Deliveries is the delivery that dead-letters (default 1: bad input is known bad at
		// the first); a hostile KSeF that never answers properly spends the failure budget.
		Deliveries int `json:"deliveries"`
	} `json:"expect"`

	seq       uint64 // stream sequence of the published message
	invoiceID string
	queryID   string
}

func badInputDir(t testing.TB) string {
	return filepath.Join(testenv.RepoRoot(t), "testdata", "bad-input")
}

func loadCases(t testing.TB) []*badCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(badInputDir(t), "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Cases []*badCase `json:"cases"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var raw struct {
		About string          `json:"about"`
		Cases json.RawMessage `json:"cases"`
	}
	if err := dec.Decode(&raw); err != nil {
		t.Fatal(err)
	}
	dec = json.NewDecoder(bytes.NewReader(raw.Cases))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m.Cases); err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	return m.Cases
}

// TestBadInput publishes the corpus of bad input (testdata/bad-input/cases.json: malformed events
// on every consumed subject, hostile XML in every encoding, references outside the event's
// context, a hostile KSeF: HTML pages, truncated JSON, huge answers and unsafe result
// packages), then a valid invoice: each bad message ends as the rejection or dead letter its
// manifest entry names, with a clear reason, logged once, or, after a hostile answer that may
// pass, accepted or completed after retries; nothing of it reaches KSeF but those; and the
// valid invoice after it is accepted.
func TestBadInput(t *testing.T) {
	cases := loadCases(t)
	// Batch mode on, so that the sender's batch consumer is there to refuse bad queue items.
	// A failure budget of 3 for the hostile KSeF that never answers properly.
	o := clusterOptions{extraTokens: map[string]string{}, env: map[string]string{"KSEF_BATCH": "true", "KSEF_MAX_FAILURES": "3"}}
	passing := 0 // cases whose invoice KSeF accepts in the end
	for _, bc := range cases {
		if k := bc.KSeF; k != nil {
			o.extraTokens[k.Context] = "bad-input-token-" + k.Context
			o.emulator.Faults.Hostile = append(o.emulator.Faults.Hostile,
				emulator.Hostile{Context: k.Context, Op: ksef.Operation(k.Op), Answer: k.Answer, Times: k.Times})
		}
		if bc.Expect.Outcome == "accepted" {
			passing++
		}
	}
	c := newCluster(t, o)
	c.start(pipeline.Sender, pipeline.Poller, pipeline.Downloader, pipeline.Visualizer)
	for _, bc := range cases {
		c.publishBad(t, bc)
	}
	good := makeBatch(t, "AFTER-CORPUS", 1)
	c.publishAll(good)

	bySeq := map[uint64]*badCase{}
	byInvoice := map[string]*badCase{}
	byQuery := map[string]*badCase{}
	for _, bc := range cases {
		bySeq[bc.seq] = bc
		if bc.invoiceID != "" {
			byInvoice[bc.invoiceID] = bc
		}
		if bc.queryID != "" {
			byQuery[bc.queryID] = bc
		}
	}
	outcomes := func(evs []natsx.Delivered) map[*badCase][]events.Event {
		out := map[*badCase][]events.Event{}
		for _, d := range evs {
			switch ev := d.Event.(type) {
			case *events.DeadLettered:
				if bc := bySeq[ev.OriginalSeq]; bc != nil {
					out[bc] = append(out[bc], ev)
				}
			case *events.InvoiceRejected:
				if bc := byInvoice[ev.InvoiceID]; bc != nil {
					out[bc] = append(out[bc], ev)
				}
			case *events.InvoiceAccepted:
				if bc := byInvoice[ev.InvoiceID]; bc != nil {
					out[bc] = append(out[bc], ev)
				}
			case *events.QueryCompleted:
				if bc := byQuery[ev.QueryID]; bc != nil {
					out[bc] = append(out[bc], ev)
				}
			}
		}
		return out
	}
	evs, ok := c.events.await(time.Minute, func(evs []natsx.Delivered) bool {
		return len(outcomes(evs)) == len(cases) && settled(good)(evs)
	}, c.reviveExited)
	if !ok {
		t.Errorf("not every bad input had an outcome, or the valid invoice after them none; %s", summary(evs))
	}
	c.consumersIdle(20*time.Second, pipeline.Sender, pipeline.Downloader)
	evs = c.caughtUp()
	got := outcomes(evs)
	logs := c.logs()
	for _, bc := range cases {
		t.Run(bc.Name, func(t *testing.T) {
			outs := got[bc]
			if len(outs) == 0 {
				t.Fatalf("no outcome (stream sequence %d)", bc.seq)
			}
			ids := map[string]bool{}
			for _, ev := range outs {
				ids[ev.Common().EventID] = true
			}
			if len(ids) != 1 {
				t.Errorf("%d distinct outcome events, want 1", len(ids))
			}
			var reason string
			wantDeliveries := max(bc.Expect.Deliveries, 1)
			switch ev := outs[0].(type) {
			case *events.DeadLettered:
				reason = ev.Reason
				if bc.Expect.Outcome != "dead_letter" {
					t.Errorf("dead-lettered by %s (%s: %s), want %s", ev.Stage, ev.ErrorKind, ev.Reason, bc.Expect.Outcome)
				}
				if ev.Stage != bc.Expect.Stage || string(ev.ErrorKind) != bc.Expect.Kind {
					t.Errorf("dead letter from %s of kind %s, want from %s of kind %s (%s)", ev.Stage, ev.ErrorKind, bc.Expect.Stage, bc.Expect.Kind, ev.Reason)
				}
				if ev.Deliveries != wantDeliveries {
					t.Errorf("dead-lettered after %d deliveries, want %d", ev.Deliveries, wantDeliveries)
				}
				if ev.OriginalSubject != bc.Subject || len(ev.OriginalData) == 0 {
					t.Errorf("dead letter of %s with %d bytes, want the original %s message", ev.OriginalSubject, len(ev.OriginalData), bc.Subject)
				}
			case *events.InvoiceRejected:
				reason = ev.Description + " " + strings.Join(ev.Details, " ")
				if bc.Expect.Outcome != "rejected" {
					t.Errorf("rejected (%d %s), want %s", ev.Code, reason, bc.Expect.Outcome)
				}
				if ev.Stage != bc.Expect.Stage || (bc.Expect.Code != nil && ev.Code != *bc.Expect.Code) {
					t.Errorf("rejected with code %d at stage %s, want %v at %s (%s)", ev.Code, ev.Stage, deref(bc.Expect.Code), bc.Expect.Stage, reason)
				}
			case *events.InvoiceAccepted, *events.QueryCompleted:
				// A hostile answer that may pass: retried (in the client or by redelivery)
				// until KSeF answered properly. The failure it caused, if any reached the
				// worker, is logged with the answer's defect.
				if want := map[string]string{"accepted": events.TypeInvoiceAccepted, "completed": events.TypeQueryCompleted}[bc.Expect.Outcome]; ev.EventType() != want {
					t.Fatalf("%s, want %s", ev.EventType(), bc.Expect.Outcome)
				}
				// Its own lines, and the next stage's (the poller's, under invoice.sent).
				lines := strings.Join(linesOf(logs, bc.seq), "\n")
				for _, line := range strings.Split(logs, "\n") {
					if (bc.invoiceID != "" && strings.Contains(line, bc.invoiceID)) || (bc.queryID != "" && strings.Contains(line, bc.queryID)) {
						lines += "\n" + line
					}
				}
				if bc.Expect.Reason != "" && !strings.Contains(lines, bc.Expect.Reason) {
					t.Errorf("no log line mentions %q:\n%s", bc.Expect.Reason, lines)
				}
				t.Logf("%s after a hostile %s to %s", bc.Expect.Outcome, bc.KSeF.Answer, bc.KSeF.Op)
				return
			default:
				t.Fatalf("%s, want %s", ev.EventType(), bc.Expect.Outcome)
			}
			if strings.TrimSpace(reason) == "" || !strings.Contains(reason, bc.Expect.Reason) {
				t.Errorf("reason %q, want one mentioning %q", reason, bc.Expect.Reason)
			}
			// Once per failure: each retried one, and the dead letter or rejection.
			if n := loggedLines(logs, bc.seq); n != wantDeliveries {
				t.Errorf("logged %d times above debug, want %d:\n%s", n, wantDeliveries, strings.Join(linesOf(logs, bc.seq), "\n"))
			}
			t.Logf("%s: %s", bc.Expect.Outcome, reason)
		})
	}
	if a := outcomes(evs); len(a) == 0 {
		t.Fatal("no outcome at all")
	}
	if !settled(good)(evs) {
		t.Fatal("the valid invoice published after the corpus has no outcome")
	}
	judged := c.judge(good, evs)
	if judged.accepted != 1 {
		t.Errorf("the valid invoice after the corpus: %+v", judged)
	}
	st := c.em.Stats()
	if len(st.Sends) != 1+passing {
		t.Errorf("KSeF processed %d distinct invoices, want only the valid one and the %d of passing hostile answers: %v", len(st.Sends), passing, st.Sends)
	}
	for key, n := range st.Sends {
		if n != 1 {
			t.Errorf("invoice %s reached KSeF %d times (a send answered badly must be reconciled, not repeated)", key, n)
		}
	}
	// Every hostile answer was given as many times as asked (at least once when always).
	served := c.em.HostileServed()
	i := 0
	for _, bc := range cases {
		if k := bc.KSeF; k != nil {
			if n := served[i]; n < max(k.Times, 1) || (k.Times > 0 && n != k.Times) {
				t.Errorf("%s: the emulator gave its hostile answer %d times, want %d", bc.Name, n, max(k.Times, 1))
			}
			i++
		}
	}
	if ex := c.exited(); len(ex) > 0 {
		t.Errorf("workers %v exited on bad input", ex)
	}
}

func deref(p *int) any {
	if p == nil {
		return "any"
	}
	return *p
}

// loggedLines counts the log lines above debug about the message at stream sequence seq.
func loggedLines(logs string, seq uint64) int { return len(linesOf(logs, seq)) }

func linesOf(logs string, seq uint64) []string {
	marker := `"seq":` + strconv.FormatUint(seq, 10) + `,`
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, marker) && !strings.Contains(line, `"level":"debug"`) {
			out = append(out, line)
		}
	}
	return out
}

// publishBad publishes one case and records its stream sequence.
func (c *cluster) publishBad(t *testing.T, bc *badCase) {
	t.Helper()
	dir := badInputDir(t)
	var data []byte
	switch {
	case bc.Raw != "":
		var err error
		if data, err = os.ReadFile(filepath.Join(dir, bc.Raw)); err != nil {
			t.Fatal(err)
		}
	case bc.Event != "":
		raw, err := os.ReadFile(filepath.Join(dir, bc.Event))
		if err != nil {
			t.Fatal(err)
		}
		// Buckets are named per test run; an event names them by placeholder, and its XML
		// (an object of the seller's, stored first) by ${SELLER_OBJECT}.
		raw = bytes.ReplaceAll(raw, []byte("${INVOICES}"), []byte(c.buckets.Invoices))
		raw = bytes.ReplaceAll(raw, []byte("${UPO}"), []byte(c.buckets.UPO))
		for _, obj := range []struct{ placeholder, name string }{{"${SELLER_OBJECT}", "accepted"}, {"${NOT_FA3_OBJECT}", "not-fa3"}} {
			if bytes.Contains(raw, []byte(obj.placeholder)) {
				raw = bytes.ReplaceAll(raw, []byte(obj.placeholder), []byte(c.putBadObject(t, bc.Name, obj.name)))
			}
		}
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%s: %v", bc.Event, err)
		}
		if data, err = msgpack.Marshal(numbersToInts(m)); err != nil {
			t.Fatal(err)
		}
		if id, ok := m["invoice_id"].(string); ok {
			bc.invoiceID = id
		}
		if id, ok := m["query_id"].(string); ok {
			bc.queryID = id
		}
	case bc.Invoice != nil:
		data = c.badInvoice(t, bc)
	default:
		t.Fatalf("case %s has nothing to publish", bc.Name)
	}
	msg := &nats.Msg{Subject: bc.Subject, Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, "bad-input:"+bc.Name)
	ack, err := c.js.PublishMsg(t.Context(), msg)
	if err != nil {
		t.Fatalf("publishing %s: %v", bc.Name, err)
	}
	bc.seq = ack.Sequence
}

// badInvoice builds the invoice.submitted of an invoice case.
func (c *cluster) badInvoice(t *testing.T, bc *badCase) []byte {
	in := bc.Invoice
	var xml []byte
	switch {
	case in.File != "":
		var err error
		if xml, err = os.ReadFile(filepath.Join(badInputDir(t), in.File)); err != nil {
			t.Fatal(err)
		}
	case in.Generate > 0:
		req := demo.Request(in.Seller, in.Generate, time.Now())
		if in.LongName > 0 {
			req.Lines[0].Name = strings.Repeat("W", in.LongName)
		}
		var err error
		if xml, err = fa3.Generate(fa3wire.Request(req)); err != nil {
			t.Fatal(err)
		}
	}
	if in.Nest > 0 {
		end := bytes.LastIndex(xml, []byte("</"))
		nest := append(bytes.Repeat([]byte("<a>"), in.Nest), bytes.Repeat([]byte("</a>"), in.Nest)...)
		xml = append(append(append([]byte{}, xml[:end]...), nest...), xml[end:]...)
	}
	if in.PadTo > len(xml) {
		// A comment before the root's end tag: still the same valid invoice, only larger.
		end := bytes.LastIndex(xml, []byte("</"))
		pad := append([]byte("<!--"), bytes.Repeat([]byte("x"), in.PadTo-len(xml)-7)...)
		pad = append(pad, "-->"...)
		xml = append(append(append([]byte{}, xml[:end]...), pad...), xml[end:]...)
	}
	ev := &events.InvoiceSubmitted{}
	bc.invoiceID = "BAD-" + bc.Name
	ev.InvoiceID, ev.ContextNIP = bc.invoiceID, in.Seller
	switch {
	case in.Structured != "":
		ev.Generate = []byte(in.Structured)
	case in.Via == "inline":
		ev.InlineXML = xml
	case in.Via == "object":
		owner, bucket := in.Seller, c.buckets.Invoices
		if in.Owner != "" {
			owner = in.Owner
		}
		if in.Bucket == "upo" {
			bucket = c.buckets.UPO
		}
		key := storage.Layout{Buckets: c.buckets}.ERPOutbox(owner, bc.invoiceID+".xml").Key
		info, err := c.store.Put(t.Context(), bucket, key, bytes.NewReader(xml), int64(len(xml)), storage.ObjectMeta{ContentType: "application/xml"})
		if err != nil {
			t.Fatal(err)
		}
		ev.XML = &events.ObjectRef{Bucket: info.Bucket, Key: info.Key, SHA256: kcrypto.SHA256Base64(xml), Size: info.Size}
		if in.SHA256 != "" {
			ev.XML.SHA256 = in.SHA256
		}
	case in.Via == "missing-object":
		ev.XML = &events.ObjectRef{Bucket: c.buckets.Invoices, Key: storage.Layout{Buckets: c.buckets}.ERPOutbox(in.Seller, "no-such-object.xml").Key, Size: 1000}
	default:
		t.Fatalf("case %s: unknown via %q", bc.Name, in.Via)
	}
	// Encoded as a producer without our codec would: nothing checked, so that the pipeline's
	// own decoding must refuse what is invalid or too large.
	ev.V, ev.Type, ev.OccurredAt = events.Version, ev.EventType(), events.At(time.Now())
	ev.EventID = "bad-input:" + bc.Name
	data, err := msgpack.Marshal(ev)
	if err != nil {
		t.Fatalf("case %s: %v", bc.Name, err)
	}
	return data
}

// numbersToInts turns JSON numbers into int64 (or float64) for msgpack.
func numbersToInts(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = numbersToInts(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbersToInts(e)
		}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

// putBadObject stores, for case name, an accepted-looking invoice of the first seller (what)
// "accepted", or a document that is not FA(3) ("not-fa3"), under the seller's keys, and returns
// its key.
func (c *cluster) putBadObject(t *testing.T, name, what string) string {
	t.Helper()
	var data []byte
	switch what {
	case "accepted":
		var err error
		if data, err = fa3.Generate(fa3wire.Request(demo.Request(demo.Sellers[0], 907, time.Now()))); err != nil {
			t.Fatal(err)
		}
	default:
		var err error
		if data, err = os.ReadFile(filepath.Join(badInputDir(t), "not-fa3.xml")); err != nil {
			t.Fatal(err)
		}
	}
	loc := storage.Layout{Buckets: c.buckets}.ERPOutbox(demo.Sellers[0], name+".xml")
	if _, err := c.store.Put(t.Context(), loc.Bucket, loc.Key, bytes.NewReader(data), int64(len(data)), storage.ObjectMeta{ContentType: "application/xml"}); err != nil {
		t.Fatal(err)
	}
	return loc.Key
}

var _ = fmt.Sprintf

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsperm"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// TestSubmitStatusGet submits XML and JSON invoices of two sellers, waits for them, reads their
// histories and copies every artifact; a missing object is an error of its own.
func TestSubmitStatusGet(t *testing.T) {
	dir := t.TempDir()
	xmlA, bytesA := writeInvoice(t, dir, "SGA-1", demo.Sellers[0])
	writeInvoice(t, dir, "SGB-1", demo.Sellers[1])
	writeRequest(t, dir, "SGJ-1", demo.Sellers[0])

	r := ksefctl(t, nil, "submit", "--wait", "--timeout", "60s", dir)
	wantCode(t, r, 0)
	wantContains(t, r.stdout, "3 invoices: 3 accepted")
	for _, id := range []string{"SGA-1", "SGB-1", "SGJ-1"} {
		line := lineWith(t, r.stdout, " "+id+" ")
		if !ksefNumber.MatchString(line) {
			t.Errorf("no KSeF number for %s in %q", id, line)
		}
	}
	wantContains(t, r.stderr, "accepted") // the plain progress lines (stderr is no terminal)

	s := status(t, "SGA-1")
	if s.State != "accepted" || !ksefNumber.MatchString(s.KsefNumber) || len(s.Contexts) != 1 || s.Contexts[0] != demo.Sellers[0] {
		t.Fatalf("status: %+v", s)
	}
	var types []string
	for _, e := range s.Events {
		types = append(types, e.Type)
	}
	for _, want := range []string{events.TypeInvoiceSubmitted, events.TypeInvoiceSent, events.TypeInvoiceAccepted} {
		if !strings.Contains(strings.Join(types, " "), want) {
			t.Errorf("status events %v lack %s", types, want)
		}
	}
	if got, want := s.Artifacts.XML.Key, "erp-outbox/"+demo.Sellers[0]+"/SGA-1.xml"; got != want {
		t.Errorf("xml key %q, want %q", got, want)
	}
	tr := ksefctl(t, nil, "status", "SGA-1")
	wantCode(t, tr, 0)
	wantContains(t, tr.stdout, "state: accepted, KSeF number "+s.KsefNumber)

	out := filepath.Join(t.TempDir(), "a.xml")
	wantCode(t, ksefctl(t, nil, "get", "SGA-1", "--xml", "-o", out), 0)
	if got, _ := os.ReadFile(out); !bytes.Equal(got, bytesA) {
		t.Fatalf("get --xml wrote %d bytes, not the %d submitted from %s", len(got), len(bytesA), xmlA)
	}

	// The PDF and the session's UPO come a little later.
	eventually(t, 30*time.Second, "the PDF and UPO of SGA-1", func() bool {
		a := status(t, "SGA-1").Artifacts
		return a.PDF.Key != "" && a.UPO.Key != ""
	})
	pdf := filepath.Join(t.TempDir(), "a.pdf")
	wantCode(t, ksefctl(t, nil, "get", "SGA-1", "--pdf", "-o", pdf), 0)
	if b, _ := os.ReadFile(pdf); !bytes.HasPrefix(b, []byte("%PDF-")) {
		t.Fatalf("get --pdf: not a PDF (%d bytes)", len(b))
	}
	upo := ksefctl(t, nil, "get", s.KsefNumber, "--upo", "-o", "-") // by KSeF number, to stdout
	wantCode(t, upo, 0)
	wantContains(t, upo.stdout, "<Potwierdzenie")
	wantContains(t, upo.stdout, s.KsefNumber)
	r = ksefctl(t, nil, "get", "SGB-1", "--html", "-o", "-")
	wantCode(t, r, 1)
	wantContains(t, r.stderr, "has no HTML")

	// An object the events name but the store lost.
	if err := os.Remove(filepath.Join(pipe.ObjectsDir, s.Artifacts.XML.Bucket, filepath.FromSlash(s.Artifacts.XML.Key))); err != nil {
		t.Fatal(err)
	}
	r = ksefctl(t, nil, "get", "SGA-1", "--xml", "-o", out+".2")
	wantCode(t, r, 1)
	wantContains(t, r.stderr, "missing from storage")
	if _, err := os.Stat(out + ".2"); err == nil {
		t.Error("a failed get left its output file")
	}
}

func lineWith(t *testing.T, text, sub string) string {
	t.Helper()
	for line := range strings.SplitSeq(text, "\n") {
		if strings.Contains(line, sub) {
			return line
		}
	}
	t.Fatalf("no line with %q", sub)
	return ""
}

// TestSubmitRejected: an invoice that fails the FA(3) schema is rejected by the pipeline.
func TestSubmitRejected(t *testing.T) {
	dir := t.TempDir()
	good, _ := writeInvoice(t, dir, "REJ-ok", demo.Sellers[1])
	bad := sample(t, "invalid", "payment-term-as-text.xml")
	r := ksefctl(t, nil, "submit", "--wait", "--output", "json", good, bad, "--id-from", "number")
	wantCode(t, r, 1)
	wantContains(t, r.stderr, "1 of 2 invoices were not accepted")
	var res []struct {
		ID     string `json:"invoice_id"`
		State  string `json:"state"`
		Reason string `json:"reason"`
		Number string `json:"ksef_number"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].State != "accepted" || !ksefNumber.MatchString(res[0].Number) ||
		res[1].ID != "29903413" || res[1].State != "rejected" || !strings.Contains(res[1].Reason, "validate stage") {
		t.Fatalf("outcomes: %+v", res)
	}
}

// TestSubmitWarnings: an invoice whose totals do not add up is accepted (KSeF does not check
// them), and ksefctl status shows the sender's warnings about it.
func TestSubmitWarnings(t *testing.T) {
	dir := t.TempDir()
	path, xml := writeInvoice(t, dir, "WARN-1", demo.Sellers[0])
	bad := regexp.MustCompile(`<P_15>[^<]*</P_15>`).ReplaceAll(xml, []byte("<P_15>1.00</P_15>"))
	if bytes.Equal(bad, xml) {
		t.Fatal("the generated invoice has no P_15")
	}
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	r := ksefctl(t, nil, "submit", "--wait", "--timeout", "60s", path)
	wantCode(t, r, 0)
	wantContains(t, r.stdout, "1 invoices: 1 accepted")
	s := status(t, "WARN-1")
	if s.State != "accepted" || len(s.Warnings) == 0 || !strings.Contains(s.Warnings[0], "P_15") {
		t.Fatalf("status: state %s, warnings %q", s.State, s.Warnings)
	}
	tr := ksefctl(t, nil, "status", "WARN-1")
	wantCode(t, tr, 0)
	wantContains(t, tr.stdout, "warning: "+s.Warnings[0])
	for _, e := range []string{events.TypeInvoiceSent, events.TypeInvoiceAccepted} {
		if line := lineWith(t, tr.stdout, e); !strings.Contains(line, "warning") {
			t.Errorf("%s line without its warnings: %q", e, line)
		}
	}
}

// TestSubmitMalformed: files that are not invoices are refused before anything is published.
func TestSubmitMalformed(t *testing.T) {
	dir := t.TempDir()
	good, _ := writeInvoice(t, dir, "MAL-ok", demo.Sellers[0])
	notXML := filepath.Join(dir, "MAL-text.xml")
	os.WriteFile(notXML, []byte("just some text\n"), 0o644)
	badJSON := filepath.Join(dir, "MAL-json.json")
	os.WriteFile(badJSON, []byte(`{"invoiceNumber": "X", "colour": "blue"}`), 0o644)
	truncated := sample(t, "invalid", "truncated-not-well-formed.xml")

	r := ksefctl(t, nil, "submit", "--wait", good, notXML, badJSON, truncated)
	wantCode(t, r, 2)
	wantContains(t, r.stderr, "nothing was sent")
	for _, f := range []string{notXML, badJSON, truncated} {
		wantContains(t, lineWith(t, r.stderr, f), "not ")
	}
	wantContains(t, r.stderr, "unknown field")
	r = ksefctl(t, nil, "events", "--subject", "invoice.submitted", "--id", "MAL-ok")
	wantCode(t, r, 0)
	if strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("the good file of a refused batch was published: %s", r.stdout)
	}
	r = ksefctl(t, nil, "submit", filepath.Join(dir, "does-not-exist.xml"))
	wantCode(t, r, 2)
}

// TestQueryAndSync downloads the buyer's invoices with a query and with incremental syncs.
func TestQueryAndSync(t *testing.T) {
	dir := t.TempDir()
	path, _ := writeInvoice(t, dir, "QRY-1", demo.Sellers[0])
	r := ksefctl(t, nil, "submit", "--wait", "--output", "json", path)
	wantCode(t, r, 0)
	number := ksefNumber.FindString(r.stdout)
	if number == "" {
		t.Fatal("no KSeF number")
	}
	today := time.Now().Format(time.DateOnly)
	yesterday := time.Now().AddDate(0, 0, -1).Format(time.DateOnly)

	// KSeF finds invoices by their permanent storage date, which comes a moment after acceptance.
	var queryID string
	for n := 1; ; n++ {
		queryID = fmt.Sprintf("q-test-%d", n)
		r = ksefctl(t, nil, "query", "--nip", demo.Buyer, "--subject", "buyer", "--from", yesterday, "--to", today, "--wait", "--id", queryID)
		wantCode(t, r, 0)
		wantContains(t, r.stdout, "query "+queryID+" of "+demo.Buyer+" as subject2: completed")
		if strings.Contains(r.stdout, number) {
			break
		}
		if n == 10 {
			t.Fatalf("ten queries did not find %s", number)
		}
		time.Sleep(300 * time.Millisecond)
	}
	s := status(t, queryID)
	if s.State != "completed" || len(s.Artifacts.Parts) == 0 {
		t.Fatalf("status of the query: %+v", s)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", today, "--to", yesterday}, "is not before --to"},
		{[]string{"--from", "2025-01-01", "--to", "2025-06-01"}, "longer than 3 months"},
		{[]string{"--from", "yesterday"}, "want RFC 3339"},
		{[]string{"--from", today, "--subject", "nobody"}, "want buyer, seller, third or authorized"},
	} {
		args := append([]string{"query", "--nip", demo.Buyer, "--subject", "buyer"}, c.args...)
		r := ksefctl(t, nil, args...)
		wantCode(t, r, 2)
		wantContains(t, r.stderr, c.want)
	}
	r = ksefctl(t, nil, "query", "--subject", "buyer", "--from", today)
	wantCode(t, r, 2)
	wantContains(t, r.stderr, "--nip is required")

	// The first sync of a context needs --from; later ones continue from the mark.
	r = ksefctl(t, nil, "sync", "--nip", demo.Buyer, "--subject", "subject2")
	wantCode(t, r, 2)
	wantContains(t, r.stderr, "give --from for the first sync")
	r = ksefctl(t, nil, "sync", "--nip", demo.Buyer, "--subject", "buyer", "--from", yesterday, "--wait", "--output", "json")
	wantCode(t, r, 0)
	var q struct {
		State    string `json:"state"`
		Invoices []struct {
			KsefNumber string `json:"ksef_number"`
		} `json:"invoices"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &q); err != nil {
		t.Fatal(err)
	}
	if q.State != "completed" || !strings.Contains(fmt.Sprint(q.Invoices), number) {
		t.Fatalf("first sync: %+v", q)
	}
	r = ksefctl(t, nil, "sync", "--nip", demo.Buyer, "--subject", "buyer", "--wait")
	wantCode(t, r, 0)
	if strings.Contains(r.stdout, number) {
		t.Error("the second sync downloaded again what the first had")
	}
	r = ksefctl(t, nil, "sync", "--status", "--output", "json")
	wantCode(t, r, 0)
	var marks []struct {
		NIP     string    `json:"context_nip"`
		Subject string    `json:"subject_type"`
		HWM     time.Time `json:"high_water_mark"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &marks); err != nil {
		t.Fatal(err)
	}
	if len(marks) != 1 || marks[0].NIP != demo.Buyer || marks[0].Subject != events.SubjectBuyer || marks[0].HWM.IsZero() {
		t.Fatalf("marks: %+v", marks)
	}
	r = ksefctl(t, nil, "sync", "--status", "--nip", demo.Sellers[0])
	wantCode(t, r, 0)
	wantContains(t, r.stdout, "no high-water marks yet")
}

// TestEvents reads the audit view, as text and JSON lines, and follows it live.
func TestEvents(t *testing.T) {
	dir := t.TempDir()
	path, _ := writeInvoice(t, dir, "EVT-1", demo.Sellers[1])

	// Follow live from now: the submission below must show up, then an interrupt ends it.
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	follow := exec.CommandContext(ctx, ksefctlBin, "events", "--follow", "--subject", "invoice.accepted", "--since", "30s")
	follow.Env = baseEnv(t)
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	follow.Stderr = &stderr
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	wantCode(t, ksefctl(t, nil, "submit", "--wait", path), 0)
	var seen string
	for seen == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("events --follow ended: %s", stderr.String())
			}
			if strings.Contains(line, " EVT-1 ") {
				seen = line
			}
		case <-ctx.Done():
			t.Fatal("events --follow never showed EVT-1's acceptance")
		}
	}
	if !strings.Contains(seen, "invoice.accepted") || !ksefNumber.MatchString(seen) {
		t.Errorf("line %q", seen)
	}
	follow.Process.Signal(syscall.SIGINT)
	if err := follow.Wait(); err != nil {
		t.Fatalf("events --follow after an interrupt: %v (%s)", err, stderr.String())
	}

	r := ksefctl(t, nil, "events", "--output", "json", "--id", "EVT-1", "--since", "10m")
	wantCode(t, r, 0)
	var types []string
	for line := range strings.SplitSeq(strings.TrimSpace(r.stdout), "\n") {
		var ev struct {
			Seq     uint64         `json:"seq"`
			Subject string         `json:"subject"`
			Event   map[string]any `json:"event"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if ev.Event["invoice_id"] != "EVT-1" || ev.Seq == 0 {
			t.Errorf("line %q", line)
		}
		types = append(types, fmt.Sprint(ev.Event["type"]))
	}
	if got := strings.Join(types, " "); !strings.HasPrefix(got, "invoice.submitted invoice.sent invoice.accepted") {
		t.Errorf("event types %s", got)
	}
	r = ksefctl(t, nil, "events", "--subject", "invoice.*", "--subject")
	wantCode(t, r, 2)
}

// TestDLQ: a malformed message is dead-lettered, listed, shown and replayed (under a new message
// id, so the replay reaches the worker and fails again); a dead letter of a sound invoice is
// replayed to acceptance.
func TestDLQ(t *testing.T) {
	nc, err := nats.Connect(pipe.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(t.Context(), "invoice.submitted", []byte("this is not msgpack"), jetstream.WithMsgID("dlq-test-garbage"))
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Seq           uint64 `json:"seq"`
		Subject       string `json:"original_subject"`
		OriginalSeq   uint64 `json:"original_seq"`
		OriginalMsgID string `json:"original_msg_id"`
		Kind          string `json:"error_kind"`
		Stage         string `json:"stage"`
		Reason        string `json:"reason"`
	}
	list := func() []row {
		r := ksefctl(t, nil, "dlq", "list", "--output", "json", "--kind", "malformed")
		wantCode(t, r, 0)
		var rows []row
		if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
			t.Fatal(err)
		}
		return rows
	}
	find := func(msgID string) *row {
		for _, r := range list() {
			if r.OriginalMsgID == msgID {
				return &r
			}
		}
		return nil
	}
	var dl *row
	eventually(t, 30*time.Second, "the dead letter", func() bool { dl = find("dlq-test-garbage"); return dl != nil })
	if dl.Subject != "invoice.submitted" || dl.OriginalSeq != ack.Sequence || dl.Stage != "sender" || dl.Reason == "" {
		t.Fatalf("dead letter %+v", dl)
	}
	r := ksefctl(t, nil, "dlq", "list")
	wantCode(t, r, 0)
	wantContains(t, lineWith(t, r.stdout, fmt.Sprintf("%d ", dl.Seq)), "malformed")
	r = ksefctl(t, nil, "dlq", "show", fmt.Sprint(dl.Seq))
	wantCode(t, r, 0)
	wantContains(t, r.stdout, "undecodable")
	wantContains(t, r.stdout, "this is not msgpack")
	wantContains(t, r.stdout, "Nats-Msg-Id dlq-test-garbage")

	seq := fmt.Sprint(dl.Seq)
	r = ksefctl(t, nil, "dlq", "replay", "--all", "--kind", "malformed", "--dry-run")
	wantCode(t, r, 0)
	wantContains(t, r.stdout, "would replay #"+seq)
	r = ksefctl(t, nil, "dlq", "replay", seq)
	wantCode(t, r, 0)
	wantContains(t, r.stdout, "replayed #"+seq)
	r = ksefctl(t, nil, "dlq", "replay", seq)
	wantCode(t, r, 0)
	wantContains(t, r.stdout, "already replayed")
	// The replay was a new message: the sender saw it and dead-lettered it again.
	eventually(t, 30*time.Second, "the replay's dead letter", func() bool { return find("dlq-test-garbage:replay-"+seq) != nil })

	// A dead letter of a sound invoice (as after a fixed outage) is replayed to acceptance.
	_, xml := writeInvoice(t, t.TempDir(), "unused", demo.Sellers[0])
	sub := &events.InvoiceSubmitted{InlineXML: xml}
	sub.InvoiceID, sub.ContextNIP = "DLQ-REPLAY-1", demo.Sellers[0]
	data, err := events.Encode(sub)
	if err != nil {
		t.Fatal(err)
	}
	letter := &events.DeadLettered{OriginalSubject: "invoice.submitted", OriginalData: data,
		OriginalHeaders: map[string][]string{"Nats-Msg-Id": {sub.EventID}, "Ksef-Correlation-Id": {sub.CorrelationID}},
		OriginalMsgID:   sub.EventID, Reason: "test: KSeF was down", ErrorKind: events.KindMaxDeliver, Deliveries: 5, Stage: "sender"}
	letter.InvoiceID, letter.ContextNIP = sub.InvoiceID, sub.ContextNIP
	cfg := natsx.Config{URL: pipe.NATSURL}.WithDefaults()
	pack, err := natsx.NewPublisher(js, cfg).PublishAck(t.Context(), letter, nil)
	if err != nil {
		t.Fatal(err)
	}
	r = ksefctl(t, nil, "status", "DLQ-REPLAY-1")
	wantCode(t, r, 0)
	wantContains(t, r.stdout, "state: dead-lettered")
	r = ksefctl(t, nil, "dlq", "replay", fmt.Sprint(pack.Sequence))
	wantCode(t, r, 0)
	eventually(t, 30*time.Second, "the replayed invoice's acceptance", func() bool {
		return status(t, "DLQ-REPLAY-1").State == "accepted"
	})

	for _, c := range [][]string{{"dlq"}, {"dlq", "replay"}, {"dlq", "show", "x"}, {"dlq", "frobnicate"}} {
		wantCode(t, ksefctl(t, nil, c...), 2)
	}
	r = ksefctl(t, nil, "dlq", "show", "1") // the stream's first message is no dead letter
	wantCode(t, r, 1)
	wantContains(t, r.stderr, "not a dead letter")
}

// TestStreams shows the stream, the workers' consumers (the sender has two: invoice.submitted and
// its batch queue) and the KV buckets.
func TestStreams(t *testing.T) {
	r := ksefctl(t, nil, "streams")
	wantCode(t, r, 0)
	wantContains(t, r.stdout, "stream KSEF:")
	for _, w := range []string{"sender", "sender-batch", "poller", "downloader", "visualizer", "KSEF_STATE"} {
		wantContains(t, r.stdout, "\n"+w+" ")
	}
	r = ksefctl(t, nil, "streams", "--output", "json")
	wantCode(t, r, 0)
	var rep []struct {
		Name      string `json:"name"`
		Consumers []struct {
			Name    string `json:"name"`
			Pending uint64 `json:"pending"`
		} `json:"consumers"`
		Missing []string `json:"missing_workers"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep) != 1 || rep[0].Name != "KSEF" || len(rep[0].Consumers) != 5 || len(rep[0].Missing) != 0 {
		t.Fatalf("streams: %+v", rep)
	}
}

// TestErrors: unknown ids, an unreachable server, bad usage.
func TestErrors(t *testing.T) {
	r := ksefctl(t, nil, "status", "no-such-invoice")
	wantCode(t, r, 1)
	wantContains(t, r.stderr, `no events for invoice "no-such-invoice"`)
	r = ksefctl(t, nil, "get", "no-such-invoice", "--xml", "-o", "-")
	wantCode(t, r, 1)
	wantContains(t, r.stderr, "no events for invoice")

	env := append(baseEnv(t), fmt.Sprintf("KSEF_NATS_URL=nats://127.0.0.1:%d", freePort(t)))
	r = ksefctl(t, env, "streams")
	wantCode(t, r, 2)
	wantContains(t, r.stderr, "cannot connect to NATS")
	if r.took > 10*time.Second {
		t.Errorf("giving up on an unreachable server took %s", r.took)
	}
	dir := t.TempDir()
	path, _ := writeInvoice(t, dir, "UNREACH-1", demo.Sellers[0])
	r = ksefctl(t, env, "submit", "--connect-timeout", "1s", path)
	wantCode(t, r, 2)
	wantContains(t, r.stderr, "within 1s")

	for _, c := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{}, 2, "name a command"},
		{[]string{"--help"}, 0, "Usage: ksefctl"},
		{[]string{"help", "submit"}, 0, "Usage: ksefctl submit"},
		{[]string{"submit", "--help"}, 0, "--id-from"},
		{[]string{"get", "x", "--xml"}, 2, "-o FILE is required"},
		{[]string{"get", "x", "--xml", "--pdf", "-o", "-"}, 2, "choose one"},
		{[]string{"submit"}, 2, "name at least one"},
		{[]string{"status"}, 2, "name one"},
		{[]string{"status", "x", "--bogus"}, 2, "status --help"},
	} {
		r := ksefctl(t, nil, c.args...)
		wantCode(t, r, c.code)
		wantContains(t, r.stdout+r.stderr, c.out)
	}
}

// TestConfigFile: settings come from flags, then the environment, then the config file.
func TestConfigFile(t *testing.T) {
	home := t.TempDir()
	cfgDir := filepath.Join(home, ".config", "ksefctl")
	os.MkdirAll(cfgDir, 0o755)
	good := "KSEF_NATS_URL=" + pipe.NATSURL
	bad := fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))
	if err := os.WriteFile(filepath.Join(cfgDir, "config"), []byte("# ksefctl\n"+good+"\nexport KSEF_STORAGE=local\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
	wantCode(t, ksefctl(t, env, "streams"), 0)                                               // from the file
	wantCode(t, ksefctl(t, env, "streams", "--connect-timeout", "1s", "--nats-url", bad), 2) // flag over file
	wantCode(t, ksefctl(t, append(env, "KSEF_NATS_URL="+bad), "--connect-timeout", "1s", "streams"), 2)
	wantCode(t, ksefctl(t, append(env, "KSEF_NATS_URL="+bad), "streams", "--nats-url", pipe.NATSURL), 0) // flag over env

	other := filepath.Join(t.TempDir(), "other.conf")
	os.WriteFile(other, []byte("KSEF_NATS_URL="+pipe.NATSURL+"\n"), 0o600)
	wantCode(t, ksefctl(t, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, "--config", other, "streams"), 0)
	r := ksefctl(t, env, "--config", filepath.Join(home, "missing.conf"), "streams")
	wantCode(t, r, 2)
	wantContains(t, r.stderr, "config file")
	os.WriteFile(other, []byte("this is not a setting\n"), 0o600)
	r = ksefctl(t, env, "streams", "--config", other)
	wantCode(t, r, 2)
	wantContains(t, r.stderr, "line 1")
}

// TestNATSCommands: "nats permissions" prints natsperm's rendering for the prefix asked, and
// "nats provision" ensures the stream, the KV buckets and every worker's consumer, the batch
// consumer included (idempotent against the running pipeline's).
func TestNATSCommands(t *testing.T) {
	r := ksefctl(t, nil, "--prefix", "acme", "nats", "permissions")
	wantCode(t, r, 0)
	if r.stdout != natsperm.Render("acme") {
		t.Fatalf("nats permissions printed something else than natsperm.Render(\"acme\")")
	}
	r = ksefctl(t, nil, "nats", "provision")
	wantCode(t, r, 0)
	for _, want := range []string{"ensured stream KSEF\n", "ensured stream KSEF-ERP\n", "ensured kv KSEF_STATE\n", "ensured kv KSEF_SESSIONS\n",
		"ensured consumer sender\n", "ensured consumer sender-batch\n", "ensured consumer visualizer\n"} {
		wantContains(t, r.stdout, want)
	}
	r = ksefctl(t, nil, "nats", "delete-everything")
	wantCode(t, r, 2)
}

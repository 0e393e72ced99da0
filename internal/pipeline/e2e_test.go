package pipeline_test

// End-to-end tests of the whole pipeline with real parts: an embedded NATS server with
// JetStream, a real MinIO server, the KSeF emulator over loopback HTTP, and the four workers of
// pipeline.Run. Nothing is mocked; the emulator's own records (SendCount, Requests) prove what
// reached KSeF.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/internal/invoicestate"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// TestE2EInvoicesToKSeFAndBack sends 200 invoices of two sellers, submitted inline, as stored
// objects and as structured data, and follows each to its KSeF number, stored XML, UPO and PDF;
// then the buyer's query downloads exactly those invoices back.
func TestE2EInvoicesToKSeFAndBack(t *testing.T) {
	const total = 200
	// KSeF's test-environment limits (10x production) on both sides: the pipeline's shared
	// limiter must keep every worker under them.
	p := start(t, options{
		emulator: emulator.Config{Limits: emulator.LimitConfig{Multiplier: 10}},
		settings: func(s *pipeline.Settings) { s.KSeF.Limits = "test" },
	})
	p.run(p.rt)
	begin := time.Now()

	ways := []string{viaInline, viaObject, viaGenerate}
	subs := map[string]*submission{}
	var ids []string
	for n := 1; n <= total; n++ {
		seller := demo.Sellers[n%len(demo.Sellers)]
		s := p.newSubmission(fmt.Sprintf("ERP-%03d", n), seller, n, ways[n%len(ways)], begin)
		p.publish(s.ev)
		subs[s.id] = s
		ids = append(ids, s.id)
	}

	// Every invoice accepted, rendered and covered by a stored UPO.
	evs := p.await(2*time.Minute, "200 invoices accepted, visualized and in UPOs", func(evs []natsx.Delivered) bool {
		if !settled(ids)(evs) {
			return false
		}
		acc, vis := byInvoice[*events.InvoiceAccepted](evs), byInvoice[*events.InvoiceVisualized](evs)
		inUPO := map[string]bool{}
		for _, u := range eventsOf[*events.SessionUpoStored](evs) {
			for _, num := range u.KsefNumbers {
				inUPO[num] = true
			}
		}
		for id, a := range acc {
			if vis[id] == nil || !inUPO[a.KsefNumber] {
				return false
			}
		}
		return true
	})
	modes := map[string]int{}
	for _, s := range eventsOf[*events.InvoiceSent](evs) {
		modes[s.Mode]++
	}
	t.Logf("%d invoices accepted, visualized and in UPOs after %v; sent %v in %d sessions", total,
		time.Since(begin).Round(time.Millisecond), modes, len(eventsOf[*events.SessionUpoStored](evs)))

	if rej := eventsOf[*events.InvoiceRejected](evs); len(rej) > 0 {
		t.Fatalf("%d invoices rejected, want none\n%s", len(rej), summary(evs))
	}
	if dl := eventsOf[*events.DeadLettered](evs); len(dl) > 0 {
		t.Fatalf("%d dead letters, want none\n%s", len(dl), summary(evs))
	}
	acc := byInvoice[*events.InvoiceAccepted](evs)
	vis := byInvoice[*events.InvoiceVisualized](evs)
	numbers := map[string]string{} // KSeF number -> ERP id
	stored := map[string][]byte{}  // ERP id -> the XML stored at send
	for _, id := range ids {
		s, a := subs[id], acc[id]
		if err := ksef.ValidateNumber(a.KsefNumber); err != nil {
			t.Errorf("%s: KSeF number %q: %v", id, a.KsefNumber, err)
		}
		if !strings.HasPrefix(a.KsefNumber, s.seller+"-") {
			t.Errorf("%s: KSeF number %s is not the seller %s's", id, a.KsefNumber, s.seller)
		}
		if other, dup := numbers[a.KsefNumber]; dup {
			t.Errorf("%s and %s got the same KSeF number %s", other, id, a.KsefNumber)
		}
		numbers[a.KsefNumber] = id
		if a.DuplicateOfEarlierSend {
			t.Errorf("%s: accepted as a duplicate of an earlier send; every invoice was new", id)
		}

		// The XML in MinIO is what was submitted (or generated from it) and what KSeF got.
		xml, info := p.object(a.XML)
		sum := kcrypto.SHA256Base64(xml)
		if sum != a.InvoiceHash || info.SHA256 != sum || a.XML.SHA256 != sum || info.Size != int64(len(xml)) {
			t.Errorf("%s: stored XML %s/%s: SHA-256 %s, stored metadata %s, event %s, invoice hash %s",
				id, a.XML.Bucket, a.XML.Key, sum, info.SHA256, a.XML.SHA256, a.InvoiceHash)
		}
		if s.xml != nil && !bytes.Equal(xml, s.xml) {
			t.Errorf("%s: the stored XML differs from the submitted one", id)
		}
		if s.xml == nil {
			inv, err := fa3.Parse(xml)
			if err != nil {
				t.Fatalf("%s: generated XML: %v", id, err)
			}
			if inv.InvoiceNumber() != s.req.InvoiceNumber || inv.SellerNIP() != s.seller || inv.BuyerNIP() != demo.Buyer {
				t.Errorf("%s: generated invoice %s from %s to %s, want %s from %s to %s", id,
					inv.InvoiceNumber(), inv.SellerNIP(), inv.BuyerNIP(), s.req.InvoiceNumber, s.seller, demo.Buyer)
			}
		}
		stored[id] = xml
		p.sentOnce(s.seller, xml)

		// A PDF of it.
		v := vis[id]
		if v.KsefNumber != a.KsefNumber || v.Format != events.FormatPDF {
			t.Errorf("%s: visualized %s as %s, want %s as pdf", id, v.KsefNumber, v.Format, a.KsefNumber)
		}
		info, err := p.rt.Store.Stat(t.Context(), v.Document.Bucket, v.Document.Key)
		if err != nil {
			t.Fatalf("%s: PDF %s/%s: %v", id, v.Document.Bucket, v.Document.Key, err)
		}
		if info.ContentType != "application/pdf" || info.Size < 1000 || info.SHA256 != v.Document.SHA256 {
			t.Errorf("%s: PDF %s: content type %q, %d bytes, SHA-256 %s (event %s)", id, v.Document.Key, info.ContentType, info.Size, info.SHA256, v.Document.SHA256)
		}
	}
	// Every PDF starts as one should (read a sample whole: they are all made the same way).
	for _, id := range ids[:10] {
		pdf, _ := p.object(vis[id].Document)
		if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
			t.Errorf("%s: the PDF starts with %q", id, pdf[:min(len(pdf), 8)])
		}
	}

	// The UPOs are stored, are UPOs, and name the invoices they cover.
	upoOf := map[string]string{} // KSeF number -> session
	for _, u := range eventsOf[*events.SessionUpoStored](evs) {
		data, info := p.object(u.UPO)
		if info.ContentType != "application/xml" || kcrypto.SHA256Base64(data) != u.UPO.SHA256 {
			t.Errorf("UPO of session %s: content type %q, SHA-256 %s (event %s)", u.SessionID, info.ContentType, kcrypto.SHA256Base64(data), u.UPO.SHA256)
		}
		for _, num := range u.KsefNumbers {
			if !bytes.Contains(data, []byte(">"+num+"<")) {
				t.Errorf("UPO of session %s is announced with %s, which it does not name", u.SessionID, num)
			}
			if s, ok := upoOf[num]; ok && s != u.SessionID {
				t.Errorf("%s is in the UPOs of sessions %s and %s", num, s, u.SessionID)
			}
			upoOf[num] = u.SessionID
		}
	}
	for num, id := range numbers {
		if _, ok := upoOf[num]; !ok {
			t.Errorf("%s (%s) is in no stored UPO", id, num)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The buyer downloads them back.
	q := &events.QueryRequested{QueryID: "buyer-all", SubjectType: events.SubjectBuyer,
		From: events.At(begin.Add(-time.Minute)), To: events.At(time.Now().Add(time.Minute))}
	q.ContextNIP = demo.Buyer
	p.publish(q)
	evs = p.await(time.Minute, "the buyer's query to complete", func(evs []natsx.Delivered) bool {
		for _, c := range eventsOf[*events.QueryCompleted](evs) {
			if c.QueryID == q.QueryID {
				return true
			}
		}
		return len(eventsOf[*events.DeadLettered](evs)) > 0
	})
	var done *events.QueryCompleted
	for _, c := range eventsOf[*events.QueryCompleted](evs) {
		if c.QueryID == q.QueryID {
			done = c
		}
	}
	if done == nil {
		t.Fatalf("the query was dead-lettered\n%s", summary(evs))
	}
	downloaded := map[string]*events.InvoiceDownloaded{}
	for _, d := range eventsOf[*events.InvoiceDownloaded](evs) {
		if d.QueryID == q.QueryID {
			if _, dup := downloaded[d.KsefNumber]; dup {
				t.Errorf("%s downloaded twice by one query", d.KsefNumber)
			}
			downloaded[d.KsefNumber] = d
		}
	}
	if done.InvoiceCount != total || len(downloaded) != total {
		t.Errorf("the query completed with %d invoices and %d were downloaded, want %d", done.InvoiceCount, len(downloaded), total)
	}
	for num, id := range numbers {
		if downloaded[num] == nil {
			t.Errorf("%s (%s) was not downloaded by the buyer", id, num)
		}
	}
	for num := range downloaded {
		if _, ok := numbers[num]; !ok {
			t.Errorf("the buyer downloaded %s, which the pipeline did not send", num)
		}
	}
	// The bytes that came back are the bytes that went out: one of each way of submitting.
	for _, id := range ids[:6] {
		d := downloaded[acc[id].KsefNumber]
		if d == nil {
			continue
		}
		back, _ := p.object(d.XML)
		if !bytes.Equal(back, stored[id]) {
			t.Errorf("%s (%s): the downloaded XML (%d bytes) differs from the one sent (%d bytes)", id, d.KsefNumber, len(back), len(stored[id]))
		}
	}
	if n := p.em.TooManyRequests(); n > 0 {
		t.Errorf("KSeF answered 429 %d times: the limiter let the workers past its limits", n)
	}
	t.Logf("the buyer's query downloaded %d invoices in %d parts; whole test %v", len(downloaded), len(done.Parts), time.Since(begin).Round(time.Millisecond))
}

// TestE2EInvalidInvoiceRejected: invoices that fail FA(3) validation end as invoice.rejected
// with code 430 and the validator's first error, without reaching KSeF, and the sender goes on
// to accept the next invoice.
func TestE2EInvalidInvoiceRejected(t *testing.T) {
	const sampleSeller = "6891152920" // the seller of the Ministry's samples
	p := start(t, options{extraTokens: map[string]string{sampleSeller: "token-sample-seller"}})
	p.run(p.rt)
	validator, err := fa3.NewValidator(testenv.SchemaDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { validator.Close() })

	samples := []struct {
		file, mustMention string
	}{
		{"missing-invoice-number-p2.xml", "P_2"},
		{"payment-term-as-text.xml", "TerminOpis"},
		{"seller-nip-nine-digits.xml", "689115292"},
	}
	var ids []string
	want := map[string]string{} // ERP id -> the validator's first error
	for i, s := range samples {
		xml, err := os.ReadFile(filepath.Join(testenv.SharedDir(t), "ksef", "samples", "invalid", s.file))
		if err != nil {
			t.Fatal(err)
		}
		_, verr := validator.Validate(t.Context(), xml)
		if verr == nil || !strings.Contains(verr.Error(), s.mustMention) {
			t.Fatalf("%s: the validator says %v, want an error about %s", s.file, verr, s.mustMention)
		}
		sub := &submission{id: fmt.Sprintf("BAD-%d", i+1), seller: sampleSeller, xml: xml, ev: &events.InvoiceSubmitted{}}
		sub.ev.InvoiceID, sub.ev.ContextNIP = sub.id, sampleSeller
		p.attach(sub, []string{viaInline, viaObject}[i%2])
		p.publish(sub.ev)
		ids = append(ids, sub.id)
		want[sub.id] = verr.Error()
	}
	good := p.newSubmission("GOOD-1", demo.Sellers[0], 1, viaInline, time.Now())
	p.publish(good.ev)
	ids = append(ids, good.id)

	evs := p.await(30*time.Second, "the invalid invoices rejected and the valid one accepted", settled(ids))
	rej, acc := byInvoice[*events.InvoiceRejected](evs), byInvoice[*events.InvoiceAccepted](evs)
	for id, first := range want {
		r := rej[id]
		if r == nil {
			t.Errorf("%s: accepted as %s, want rejected", id, acc[id].KsefNumber)
			continue
		}
		if r.Code != int(ksef.StatusInvalid) || r.Stage != events.StageValidate {
			t.Errorf("%s: rejected with code %d at stage %s, want 430 at %s", id, r.Code, r.Stage, events.StageValidate)
		}
		if len(r.Details) == 0 || r.Details[0] != first {
			t.Errorf("%s: details %q, want the validator's first error %q", id, r.Details, first)
		}
		if r.Description != ksef.StatusInvalid.Description() {
			t.Errorf("%s: description %q, want %q", id, r.Description, ksef.StatusInvalid.Description())
		}
	}
	if a := acc[good.id]; a == nil {
		t.Errorf("the valid invoice after the invalid ones was rejected: %+v", rej[good.id])
	} else if err := ksef.ValidateNumber(a.KsefNumber); err != nil {
		t.Errorf("the valid invoice's KSeF number: %v", err)
	}
	// Only the valid invoice reached KSeF: invalid ones are refused before a session is used.
	if n := p.em.Requests(ksef.OpInvoiceSend, 200); n != 1 {
		t.Errorf("KSeF took %d invoices, want 1 (the valid one)", n)
	}
	if st := p.em.Stats(); len(st.Sends) != 1 {
		t.Errorf("KSeF processed %v, want only the valid invoice", st.Sends)
	}
	if dl := eventsOf[*events.DeadLettered](evs); len(dl) > 0 {
		t.Errorf("dead letters: %s", summary(evs))
	}
}

// TestE2EDuplicateInvoice: a second ERP invoice with the seller, type and number (P_2) of an
// accepted one is refused by KSeF with 440 and the original's KSeF number. Byte-for-byte the same
// document under a second ERP id is instead recognised as already in KSeF: accepted under the
// original's number, marked duplicate_of_earlier_send.
func TestE2EDuplicateInvoice(t *testing.T) {
	p := start(t, options{})
	p.run(p.rt)
	seller := demo.Sellers[0]
	issued := time.Now()

	first := p.newSubmission("ERP-FIRST", seller, 7, viaInline, issued)
	p.publish(first.ev)
	evs := p.await(30*time.Second, "the first invoice accepted", settled([]string{first.id}))
	orig := byInvoice[*events.InvoiceAccepted](evs)[first.id]
	if orig == nil {
		t.Fatalf("the first invoice was not accepted\n%s", summary(evs))
	}
	// Its session closes and its UPO comes before the duplicates are sent, so that they go to a
	// session of their own, in which KSeF accepts nothing.
	p.await(30*time.Second, "the first invoice's UPO", func(evs []natsx.Delivered) bool {
		for _, u := range eventsOf[*events.SessionUpoStored](evs) {
			if slices.Contains(u.KsefNumbers, orig.KsefNumber) {
				return true
			}
		}
		return false
	})

	// The same invoice number with different content (another price): a true duplicate.
	changed := first.req
	changed.Lines = slices.Clone(changed.Lines)
	changed.Lines[0].UnitNetPrice = "199.00"
	other, err := fa3.Generate(fa3wire.Request(changed))
	if err != nil {
		t.Fatal(err)
	}
	dup := &submission{id: "ERP-SECOND", seller: seller, xml: other, ev: &events.InvoiceSubmitted{}}
	dup.ev.InvoiceID, dup.ev.ContextNIP = dup.id, seller
	p.attach(dup, viaObject)
	// The identical document under a third ERP id.
	same := &submission{id: "ERP-THIRD", seller: seller, xml: first.xml, ev: &events.InvoiceSubmitted{}}
	same.ev.InvoiceID, same.ev.ContextNIP = same.id, seller
	p.attach(same, viaInline)
	p.publish(dup.ev)
	p.publish(same.ev)

	evs = p.await(30*time.Second, "both later submissions settled", settled([]string{dup.id, same.id}))
	rej, acc := byInvoice[*events.InvoiceRejected](evs), byInvoice[*events.InvoiceAccepted](evs)
	if r := rej[dup.id]; r == nil {
		t.Errorf("the different invoice with the same number was accepted as %s, want rejected with 440", acc[dup.id].KsefNumber)
	} else {
		if r.Code != int(ksef.StatusDuplicate) || r.Stage != events.StageStatus {
			t.Errorf("duplicate rejected with code %d at stage %s, want 440 at %s", r.Code, r.Stage, events.StageStatus)
		}
		if r.OriginalKsefNumber != orig.KsefNumber {
			t.Errorf("original_ksef_number %q, want the first invoice's %s", r.OriginalKsefNumber, orig.KsefNumber)
		}
		if r.Extensions[ksef.ExtOriginalKsefNumber] != orig.KsefNumber {
			t.Errorf("extensions %v, want %s=%s", r.Extensions, ksef.ExtOriginalKsefNumber, orig.KsefNumber)
		}
	}
	if a := acc[same.id]; a == nil {
		t.Errorf("the identical document under another ERP id was rejected (%+v), want accepted as a duplicate of the earlier send", rej[same.id])
	} else {
		if a.KsefNumber != orig.KsefNumber || !a.DuplicateOfEarlierSend {
			t.Errorf("the identical document: accepted as %s (duplicate_of_earlier_send %v), want %s and true", a.KsefNumber, a.DuplicateOfEarlierSend, orig.KsefNumber)
		}
		if !a.AcquisitionDate.Equal(orig.AcquisitionDate.Time) {
			t.Errorf("the identical document: acquisition date %v, want the original's %v", a.AcquisitionDate, orig.AcquisitionDate)
		}
	}
	if a := acc[first.id]; a.DuplicateOfEarlierSend {
		t.Error("the first invoice is marked a duplicate")
	}
	// What reached KSeF: the first document twice (two ERP ids), the changed one once.
	num := first.req.InvoiceNumber
	if n := p.em.SendCount(seller, num, kcrypto.SHA256Base64(first.xml)); n != 2 {
		t.Errorf("the first document reached KSeF %d times, want 2 (ERP-FIRST and ERP-THIRD)", n)
	}
	if n := p.em.SendCount(seller, num, kcrypto.SHA256Base64(other)); n != 1 {
		t.Errorf("the changed document reached KSeF %d times, want 1", n)
	}
	if st := p.em.Stats(); st.Outcomes[ksef.StatusDuplicate] != 2 || st.Outcomes[ksef.StatusAccepted] != 1 {
		t.Errorf("KSeF's outcomes %v, want one 200 and two 440", st.Outcomes)
	}

	// The duplicates' session has no UPO (KSeF accepted nothing in it): once it is closed, the
	// poller lets go of its session.closed instead of asking for the UPO forever.
	evs = p.await(30*time.Second, "the duplicates' session closed", func(evs []natsx.Delivered) bool {
		return len(eventsOf[*events.SessionClosed](evs)) >= 2
	})
	p.consumersIdle(20*time.Second, pipeline.Sender, pipeline.Poller, pipeline.Visualizer)
	evs = p.caughtUp()
	if n := len(eventsOf[*events.SessionUpoStored](evs)); n != 1 {
		t.Errorf("%d UPOs stored, want 1 (of the first invoice's session)", n)
	}
	if dl := eventsOf[*events.DeadLettered](evs); len(dl) > 0 {
		t.Errorf("dead letters\n%s", summary(evs))
	}
}

// TestE2ERedeliveredSubmissionNotSentTwice publishes an accepted invoice's invoice.submitted
// again once JetStream's duplicate window has passed, so that the sender really gets it a second
// time: KSeF still sees the invoice once, and a consumer deduplicating by event_id sees one
// invoice.accepted.
func TestE2ERedeliveredSubmissionNotSentTwice(t *testing.T) {
	for _, tc := range []struct{ via, senderBug string }{
		{via: viaInline},
		{via: viaObject},
		{via: viaGenerate},
	} {
		t.Run(tc.via, func(t *testing.T) {
			if tc.senderBug != "" {
				t.Skip("sender bug: " + tc.senderBug)
			}
			testRedelivered(t, tc.via)
		})
	}
}

func testRedelivered(t *testing.T, via string) {
	const window = time.Second
	p := start(t, options{settings: func(s *pipeline.Settings) { s.NATS.DuplicateWindow = window }})
	p.run(p.rt)
	seller := demo.Sellers[1]
	s := p.newSubmission("ERP-AGAIN", seller, 11, via, time.Now())
	firstAck := p.publish(s.ev)
	evs := p.await(30*time.Second, "the invoice accepted", settled([]string{s.id}))
	acc := byInvoice[*events.InvoiceAccepted](evs)[s.id]
	if acc == nil {
		t.Fatalf("not accepted\n%s", summary(evs))
	}

	// The very same event (same bytes, same Nats-Msg-Id), stored again after the window.
	deadline := time.Now().Add(10 * window)
	var again *jetstream.PubAck
	for again = p.publish(s.ev); again.Duplicate; again = p.publish(s.ev) {
		if time.Now().After(deadline) {
			t.Fatalf("JetStream still deduplicates the submission %v after it was first published", 10*window)
		}
		time.Sleep(window / 5)
	}
	if again.Sequence == firstAck.Sequence {
		t.Fatalf("the second publication got the first one's sequence %d", again.Sequence)
	}
	p.consumersIdle(30*time.Second, pipeline.Sender, pipeline.Poller, pipeline.Visualizer)
	evs = p.caughtUp()

	submitted := 0
	for _, ev := range eventsOf[*events.InvoiceSubmitted](evs) {
		if ev.InvoiceID == s.id {
			submitted++
		}
	}
	if submitted != 2 {
		t.Fatalf("invoice.submitted is in the stream %d times, want 2 (the redelivery did not happen)", submitted)
	}
	if n := p.em.Requests(ksef.OpInvoiceSend, 200); n != 1 {
		t.Errorf("KSeF took %d sends, want 1", n)
	}
	xml, _ := p.object(acc.XML)
	p.sentOnce(seller, xml)
	if n := distinctIDs[*events.InvoiceAccepted](evs, s.id); n != 1 {
		t.Errorf("%d distinct invoice.accepted event ids, want 1", n)
	}
	for _, a := range eventsOf[*events.InvoiceAccepted](evs) {
		if a.InvoiceID == s.id && a.KsefNumber != acc.KsefNumber {
			t.Errorf("accepted again as %s, first as %s", a.KsefNumber, acc.KsefNumber)
		}
	}
	if rej := byInvoice[*events.InvoiceRejected](evs)[s.id]; rej != nil {
		t.Errorf("the redelivery was rejected: %d %s %v", rej.Code, rej.Description, rej.Details)
	}
	if dl := eventsOf[*events.DeadLettered](evs); len(dl) > 0 {
		t.Errorf("dead letters: %s", summary(evs))
	}
	st, err := p.rt.States.State(t.Context(), invoicestate.Key(seller, s.id))
	if err != nil || st == nil || st.Status != invoicestate.Sent || st.Attempt != 1 {
		t.Errorf("sender state %+v (%v), want sent on the first attempt", st, err)
	}
}

// TestE2ECrashAfterSendNotSentTwice loses the sender's NATS connection right after KSeF took an
// invoice, before the sender recorded the send or acknowledged the message (as a crash would),
// then starts a new process: the redelivered submission is reconciled with KSeF's session list
// instead of being sent again.
func TestE2ECrashAfterSendNotSentTwice(t *testing.T) {
	for _, tc := range []struct{ via, senderBug string }{
		{via: viaInline},
		{via: viaObject},
		{via: viaGenerate},
	} {
		t.Run(tc.via, func(t *testing.T) {
			if tc.senderBug != "" {
				t.Skip("sender bug: " + tc.senderBug)
			}
			testCrashAfterSend(t, tc.via)
		})
	}
}

func testCrashAfterSend(t *testing.T, via string) {
	var first atomic.Pointer[pipeline.Runtime]
	crashed := make(chan struct{})
	crash := &sendHook{after: func(n int32) {
		if n == 1 {
			first.Load().NC.Close()
			close(crashed)
		}
	}}
	p := start(t, options{
		settings:    func(s *pipeline.Settings) { s.AckWait = 2 * time.Second },
		ksefOptions: []ksef.Option{ksef.WithHTTPClient(&http.Client{Transport: crash, Timeout: 30 * time.Second})},
	})
	first.Store(p.rt)
	stop := p.run(p.rt, pipeline.Sender)
	seller := demo.Sellers[0]
	s := p.newSubmission("ERP-CRASH", seller, 5, via, time.Now())
	p.publish(s.ev)
	select {
	case <-crashed:
	case <-time.After(30 * time.Second):
		t.Fatal("the sender did not send the invoice within 30s")
	}
	if err := stop(); err != nil {
		t.Logf("the crashed process's workers ended with: %v", err)
	}

	// A new process: new connections, a new session pool.
	rt, err := pipeline.Open(t.Context(), p.rt.Settings, p.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	p.rt = rt
	key := invoicestate.Key(seller, s.id)
	if st, err := rt.States.State(t.Context(), key); err != nil || st == nil || st.Status != invoicestate.Sending {
		t.Fatalf("after the crash the sender state is %+v (%v), want %q: the crash did not come between send and record", st, err, invoicestate.Sending)
	}
	if n := p.em.Requests(ksef.OpInvoiceSend, 200); n != 1 {
		t.Fatalf("KSeF took %d sends before the restart, want 1", n)
	}
	p.run(rt)
	evs := p.await(30*time.Second, "the invoice accepted after the restart", settled([]string{s.id}))
	acc := byInvoice[*events.InvoiceAccepted](evs)[s.id]
	if acc == nil {
		t.Fatalf("not accepted\n%s", summary(evs))
	}
	if err := ksef.ValidateNumber(acc.KsefNumber); err != nil {
		t.Error(err)
	}
	if n := p.em.Requests(ksef.OpInvoiceSend, 200); n != 1 {
		t.Errorf("KSeF took %d sends, want 1", n)
	}
	xml, _ := p.object(acc.XML)
	p.sentOnce(seller, xml)
	if n := p.em.Requests(ksef.OpSessionInvoices, 200); n < 1 {
		t.Error("the restarted sender did not reconcile with ksefSessionInvoices")
	}
	if n := distinctIDs[*events.InvoiceSent](evs, s.id); n != 1 {
		t.Errorf("%d distinct invoice.sent events, want 1", n)
	}
	if st, err := rt.States.State(t.Context(), key); err != nil || st == nil || st.Status != invoicestate.Sent {
		t.Errorf("sender state %+v (%v), want sent", st, err)
	}
}

// TestE2EMalformedSubmissionDeadLettered: bytes that are not a msgpack event on
// invoice.submitted become a dead letter of kind "malformed", and the sender goes on.
func TestE2EMalformedSubmissionDeadLettered(t *testing.T) {
	p := start(t, options{})
	p.run(p.rt)
	subj := p.rt.Settings.NATS.Subjects().InvoiceSubmitted()
	// A real event cut in half, and bytes msgpack never uses (0xc1).
	whole := p.newSubmission("ERP-CUT", demo.Sellers[0], 2, viaInline, time.Now())
	data, err := p.rt.Settings.NATS.Codec().Encode(whole.ev)
	if err != nil {
		t.Fatal(err)
	}
	bad := map[uint64][]byte{}
	for _, b := range [][]byte{data[:len(data)/2], {0xc1, 0xc1, 'n', 'o', 't'}} {
		ack, err := p.rt.JS.Publish(t.Context(), subj, b)
		if err != nil {
			t.Fatal(err)
		}
		bad[ack.Sequence] = b
	}
	good := p.newSubmission("ERP-GOOD", demo.Sellers[0], 3, viaInline, time.Now())
	p.publish(good.ev)

	evs := p.await(30*time.Second, "two dead letters and the good invoice accepted", func(evs []natsx.Delivered) bool {
		return len(eventsOf[*events.DeadLettered](evs)) >= 2 && settled([]string{good.id})(evs)
	})
	dlSubject := p.rt.Settings.NATS.Subjects().DeadLetter(subj)
	for _, d := range evs {
		dl, ok := d.Event.(*events.DeadLettered)
		if !ok {
			continue
		}
		want, ok := bad[dl.OriginalSeq]
		if !ok {
			t.Errorf("a dead letter of stream sequence %d, which is not one of the malformed messages: %s", dl.OriginalSeq, dl.Reason)
			continue
		}
		delete(bad, dl.OriginalSeq)
		if d.Subject != dlSubject || dl.OriginalSubject != subj || dl.Stage != pipeline.Sender {
			t.Errorf("dead letter on %s of %s from %s, want on %s of %s from %s", d.Subject, dl.OriginalSubject, dl.Stage, dlSubject, subj, pipeline.Sender)
		}
		if dl.ErrorKind != events.KindMalformed {
			t.Errorf("dead letter kind %q (%s), want %q", dl.ErrorKind, dl.Reason, events.KindMalformed)
		}
		if !bytes.Equal(dl.OriginalData, want) {
			t.Errorf("dead letter carries %d bytes, want the %d of the original", len(dl.OriginalData), len(want))
		}
		if dl.Deliveries != 1 {
			t.Errorf("dead-lettered after %d deliveries, want at the first: it can never be read", dl.Deliveries)
		}
	}
	if len(bad) > 0 {
		t.Errorf("no dead letter for stream sequences %v", sortedKeysU(bad))
	}
	if a := byInvoice[*events.InvoiceAccepted](evs)[good.id]; a == nil {
		t.Errorf("the good invoice after the malformed ones was not accepted\n%s", summary(evs))
	}
	if byInvoice[*events.InvoiceAccepted](evs)[whole.id] != nil {
		t.Error("the cut event was accepted")
	}
	p.consumersIdle(10*time.Second, pipeline.Sender)
}

// TestE2EDrainOnCancel stops the workers while an invoice is on its way to KSeF and starts them
// again: the send in flight finishes during the drain and is recorded (none is left between send
// and record, nothing unacknowledged), and after the restart every invoice is accepted, each
// sent exactly once.
func TestE2EDrainOnCancel(t *testing.T) {
	const total, cancelAt = 24, 5
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cancelled atomic.Bool
	hook := &sendHook{before: func(n int32) {
		if n == cancelAt {
			cancel() // the send goes on: the drain must let it finish
			cancelled.Store(true)
		}
	}}
	p := start(t, options{
		// Sends take a while, so the drain has something to wait for.
		emulator: emulator.Config{Faults: emulator.Faults{Latency: 100 * time.Millisecond, Ops: []ksef.Operation{ksef.OpInvoiceSend}}},
		// Two handlers per worker, so that most invoices wait in the stream when the cancel comes.
		settings:    func(s *pipeline.Settings) { s.Concurrency = 2 },
		ksefOptions: []ksef.Option{ksef.WithHTTPClient(&http.Client{Transport: hook, Timeout: 30 * time.Second})},
	})
	wait := p.runUntil(ctx, p.rt)
	var ids []string
	subs := map[string]*submission{}
	for n := 1; n <= total; n++ {
		s := p.newSubmission(fmt.Sprintf("ERP-D%02d", n), demo.Sellers[n%2], n, []string{viaInline, viaGenerate}[n%2], time.Now())
		p.publish(s.ev)
		ids = append(ids, s.id)
		subs[s.id] = s
	}
	select {
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("the pipeline did not reach its send #%d within 30s", cancelAt)
	}
	if err := wait(); err != nil {
		t.Fatalf("Run returned %v after the cancel, want nil", err)
	}
	if !cancelled.Load() {
		t.Fatal("the workers stopped before the cancel")
	}

	sent := 0
	for _, id := range ids {
		st, err := p.rt.States.State(t.Context(), invoicestate.Key(subs[id].seller, id))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case st == nil:
		case st.Status == invoicestate.Sent:
			sent++
		default:
			t.Errorf("%s is %q after the drain, want sent or untouched", id, st.Status)
		}
	}
	if got := p.em.Requests(ksef.OpInvoiceSend, 200); got != sent || sent < cancelAt {
		t.Errorf("KSeF took %d invoices before the restart and the sender recorded %d, want the same, at least %d", got, sent, cancelAt)
	}
	c, err := p.rt.JS.Consumer(t.Context(), natsx.StreamName(p.rt.Settings.NATS.SubjectPrefix), pipeline.Sender)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := c.Info(t.Context()); err != nil || info.NumAckPending != 0 {
		t.Errorf("the sender left messages unacknowledged after the drain: %+v (%v)", info, err)
	}
	// What was sent was also announced before the drain ended.
	evs := p.caughtUp()
	if n := len(eventsOf[*events.InvoiceSent](evs)); n != sent {
		t.Errorf("%d invoice.sent events for %d invoices sent before the restart", n, sent)
	}
	t.Logf("%d of %d invoices sent before the restart", sent, total)

	p.run(p.rt)
	evs = p.await(time.Minute, "every invoice accepted after the restart", settled(ids))
	acc := byInvoice[*events.InvoiceAccepted](evs)
	for _, id := range ids {
		a := acc[id]
		if a == nil {
			t.Errorf("%s not accepted", id)
			continue
		}
		xml, _ := p.object(a.XML)
		p.sentOnce(subs[id].seller, xml)
	}
	if n := p.em.Requests(ksef.OpInvoiceSend, 200); n != total {
		t.Errorf("KSeF took %d sends, want %d", n, total)
	}
	if len(eventsOf[*events.DeadLettered](evs))+len(eventsOf[*events.InvoiceRejected](evs)) > 0 {
		t.Errorf("rejections or dead letters\n%s", summary(evs))
	}
}

// TestE2ESessionEndedByKSeF: KSeF ends an interactive session early (in-practice.md: sessions
// expire, are closed by a restart); the invoices sent after that go into a new session and are
// accepted, and the UPO of the ended session is still fetched.
func TestE2ESessionEndedByKSeF(t *testing.T) {
	p := start(t, options{
		emulator: emulator.Config{Faults: emulator.Faults{EarlyExpiryRate: 1, EarlyExpiry: 2 * time.Second}},
		// The pool would keep the session for a minute; KSeF ends it first.
		settings: func(s *pipeline.Settings) { s.SessionCloseIdle = time.Minute },
	})
	p.run(p.rt)
	seller := demo.Sellers[0]
	first := p.newSubmission("ERP-E1", seller, 1, viaInline, time.Now())
	p.publish(first.ev)
	evs := p.await(30*time.Second, "the first invoice accepted", settled([]string{first.id}))
	acc := byInvoice[*events.InvoiceAccepted](evs)[first.id]
	if acc == nil {
		t.Fatalf("the first invoice was not accepted\n%s", summary(evs))
	}
	client, err := p.rt.Clients.For(t.Context(), seller)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		info, err := client.SessionStatus(t.Context(), acc.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		if info.SessionStatus != ksefapi.Active {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("KSeF did not end session %s early", acc.SessionID)
		}
	}

	var ids []string
	subs := map[string]*submission{}
	for n := 2; n <= 3; n++ {
		s := p.newSubmission(fmt.Sprintf("ERP-E%d", n), seller, n, viaInline, time.Now())
		p.publish(s.ev)
		ids = append(ids, s.id)
		subs[s.id] = s
	}
	evs = p.await(30*time.Second, "the invoices after the session's end settled", settled(ids))
	accepted := byInvoice[*events.InvoiceAccepted](evs)
	for _, id := range ids {
		a := accepted[id]
		if a == nil {
			r := byInvoice[*events.InvoiceRejected](evs)[id]
			t.Errorf("%s was rejected (%d %s %v, stage %s), want accepted in a new session", id, r.Code, r.Description, r.Details, r.Stage)
			continue
		}
		if a.SessionID == acc.SessionID {
			t.Errorf("%s accepted in the ended session %s", id, a.SessionID)
		}
		p.sentOnce(seller, subs[id].xml)
	}
	p.await(30*time.Second, "the ended session's UPO", func(evs []natsx.Delivered) bool {
		for _, u := range eventsOf[*events.SessionUpoStored](evs) {
			if u.SessionID == acc.SessionID && slices.Contains(u.KsefNumbers, acc.KsefNumber) {
				return true
			}
		}
		return false
	})
}

// TestE2EFaultyKSeF runs invoices through a KSeF that misbehaves as in-practice.md reports:
// sends and closes that take effect but are answered 5xx, plain 5xx pages, 429s and slow calls.
// Every invoice still ends accepted, each sent exactly once and covered by a stored UPO, without
// dead letters.
func TestE2EFaultyKSeF(t *testing.T) {
	const total = 24
	p := start(t, options{emulator: emulator.Config{Seed: 7, Faults: emulator.Faults{
		AmbiguousRate: 0.25, ServerErrorRate: 0.1, TooManyRate: 0.05, RetryAfter: time.Second,
		SlowRate: 0.1, SlowDelay: 200 * time.Millisecond,
	}}})
	p.run(p.rt)
	var ids []string
	subs := map[string]*submission{}
	for n := 1; n <= total; n++ {
		s := p.newSubmission(fmt.Sprintf("ERP-F%02d", n), demo.Sellers[n%2], n, []string{viaInline, viaObject, viaGenerate}[n%3], time.Now())
		p.publish(s.ev)
		ids = append(ids, s.id)
		subs[s.id] = s
	}
	evs := p.await(2*time.Minute, "every invoice settled and in a stored UPO", func(evs []natsx.Delivered) bool {
		if !settled(ids)(evs) {
			return false
		}
		inUPO := map[string]bool{}
		for _, u := range eventsOf[*events.SessionUpoStored](evs) {
			for _, num := range u.KsefNumbers {
				inUPO[num] = true
			}
		}
		for _, a := range byInvoice[*events.InvoiceAccepted](evs) {
			if !inUPO[a.KsefNumber] {
				return false
			}
		}
		return true
	})
	acc := byInvoice[*events.InvoiceAccepted](evs)
	for _, id := range ids {
		a := acc[id]
		if a == nil {
			r := byInvoice[*events.InvoiceRejected](evs)[id]
			t.Errorf("%s rejected: %d %s %v (stage %s)", id, r.Code, r.Description, r.Details, r.Stage)
			continue
		}
		if err := ksef.ValidateNumber(a.KsefNumber); err != nil {
			t.Errorf("%s: %v", id, err)
		}
		xml, _ := p.object(a.XML)
		p.sentOnce(subs[id].seller, xml)
	}
	if dl := eventsOf[*events.DeadLettered](evs); len(dl) > 0 {
		t.Errorf("dead letters\n%s", summary(evs))
	}
	st := p.em.Stats()
	if st.Faults["ambiguous"] == 0 || st.Faults["5xx"] == 0 || st.Faults["429"] == 0 {
		t.Errorf("faults injected %v: want some of each kind, or the test proves nothing", st.Faults)
	}
	t.Logf("faults injected: %v", st.Faults)
}

// TestE2EVisualizeOnRequest: invoice.visualize renders an accepted invoice in another format and
// language next to the default PDF, renders an invoice not in KSeF (offline, named by its ERP
// id), and dead-letters a request for an XML that does not exist without stopping the worker.
func TestE2EVisualizeOnRequest(t *testing.T) {
	p := start(t, options{})
	p.run(p.rt)
	seller := demo.Sellers[1]
	s := p.newSubmission("ERP-V1", seller, 4, viaInline, time.Now())
	p.publish(s.ev)
	evs := p.await(30*time.Second, "the invoice accepted and its PDF", func(evs []natsx.Delivered) bool {
		return byInvoice[*events.InvoiceVisualized](evs)[s.id] != nil
	})
	acc := byInvoice[*events.InvoiceAccepted](evs)[s.id]
	if acc == nil {
		t.Fatalf("not accepted\n%s", summary(evs))
	}

	html := &events.VisualizeRequested{KsefNumber: acc.KsefNumber, XML: acc.XML, Format: events.FormatHTML, Language: events.LangEN}
	html.InvoiceID, html.ContextNIP = s.id, seller
	offline := &events.VisualizeRequested{XML: p.putObject(p.rt.Layout.ERPOutbox(seller, "offline.xml").Key, s.xml), Format: events.FormatPDF, Language: events.LangPLEN, Offline: true}
	offline.InvoiceID, offline.ContextNIP = "ERP-OFFLINE", seller
	missing := &events.VisualizeRequested{XML: &events.ObjectRef{Bucket: p.rt.Layout.Buckets.Invoices, Key: seller + "/nowhere.xml"}, Format: events.FormatPDF, Language: events.LangPL}
	missing.InvoiceID, missing.ContextNIP = "ERP-MISSING", seller
	for _, ev := range []*events.VisualizeRequested{missing, html, offline} {
		p.publish(ev)
	}
	evs = p.await(30*time.Second, "both renderings and a dead letter", func(evs []natsx.Delivered) bool {
		return len(eventsOf[*events.InvoiceVisualized](evs)) >= 3 && len(eventsOf[*events.DeadLettered](evs)) >= 1
	})
	var gotHTML, gotOffline *events.InvoiceVisualized
	for _, v := range eventsOf[*events.InvoiceVisualized](evs) {
		switch {
		case v.Format == events.FormatHTML:
			gotHTML = v
		case v.InvoiceID == offline.InvoiceID:
			gotOffline = v
		}
	}
	if gotHTML == nil || gotHTML.KsefNumber != acc.KsefNumber || gotHTML.Language != events.LangEN {
		t.Fatalf("HTML rendering %+v, want one of %s in English", gotHTML, acc.KsefNumber)
	}
	page, info := p.object(gotHTML.Document)
	if !strings.HasPrefix(info.ContentType, "text/html") || !bytes.Contains(page, []byte(acc.KsefNumber)) || !bytes.Contains(page, []byte(s.req.InvoiceNumber)) {
		t.Errorf("HTML rendering: content type %q, %d bytes, naming the KSeF number %v and the invoice number %v", info.ContentType,
			len(page), bytes.Contains(page, []byte(acc.KsefNumber)), bytes.Contains(page, []byte(s.req.InvoiceNumber)))
	}
	pdf := byInvoice[*events.InvoiceVisualized](evs)[s.id]
	if pdf.Document.Key == gotHTML.Document.Key {
		t.Errorf("the HTML rendering replaced the PDF at %s", pdf.Document.Key)
	}
	if gotOffline == nil || gotOffline.KsefNumber != "" || gotOffline.Language != events.LangPLEN {
		t.Fatalf("offline rendering %+v, want one named by its ERP id in pl_en", gotOffline)
	}
	doc, info := p.object(gotOffline.Document)
	if info.ContentType != "application/pdf" || !bytes.HasPrefix(doc, []byte("%PDF-")) || !strings.Contains(gotOffline.Document.Key, offline.InvoiceID) {
		t.Errorf("offline rendering %s: content type %q, starts %q", gotOffline.Document.Key, info.ContentType, doc[:min(8, len(doc))])
	}
	dls := eventsOf[*events.DeadLettered](evs)
	if len(dls) != 1 || dls[0].InvoiceID != missing.InvoiceID || dls[0].Stage != pipeline.Visualizer || dls[0].ErrorKind != events.KindPermanent {
		t.Errorf("dead letters %+v, want one permanent from the visualizer for %s", dls, missing.InvoiceID)
	}
}

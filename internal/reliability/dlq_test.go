package reliability

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/ctl"
	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
)

// TestDeadLetterReplay: an invoice of a seller whose token is not configured yet is
// dead-lettered; once the token is added and the sender restarted, `ksefctl dlq list` shows the
// dead letter and `ksefctl dlq replay` sends the invoice: accepted, and in KSeF exactly once.
func TestDeadLetterReplay(t *testing.T) {
	const seller, token = "1234563218", "token-of-the-late-seller"
	c := newCluster(t, clusterOptions{extraTokens: map[string]string{seller: token}})
	// The workers start without the new seller's token.
	var without []string
	for nip, tok := range c.tokens {
		if nip != seller {
			without = append(without, nip+"="+tok)
		}
	}
	c.o.env = map[string]string{"KSEF_TOKENS": strings.Join(without, ",")}
	c.start(pipeline.Sender, pipeline.Poller)

	batch := makeBatch(t, "LATE", 1)
	inv := batch[0]
	req := demo.Request(seller, 1, time.Now())
	xml, err := fa3.Generate(fa3wire.Request(req))
	if err != nil {
		t.Fatal(err)
	}
	inv.seller, inv.xml, inv.number = seller, xml, req.InvoiceNumber
	inv.hash = kcrypto.SHA256Base64(xml)
	inv.ev.ContextNIP, inv.ev.InlineXML = seller, xml
	c.publishAll(batch)
	evs, ok := c.events.await(30*time.Second, func(evs []natsx.Delivered) bool {
		return len(eventsOf[*events.DeadLettered](evs)) > 0
	}, nil)
	if !ok {
		t.Fatalf("no dead letter; %s", summary(evs))
	}
	dl := eventsOf[*events.DeadLettered](evs)[0]
	if dl.InvoiceID != inv.id || !strings.Contains(dl.Reason, "no KSeF token") {
		t.Fatalf("dead letter of %s: %s", dl.InvoiceID, dl.Reason)
	}
	var dlSeq uint64
	for _, d := range evs {
		if _, ok := d.Event.(*events.DeadLettered); ok {
			dlSeq = d.Seq
		}
	}

	// The cause is fixed: the workers get the token.
	c.o.env = nil
	c.restart(pipeline.Sender)
	c.restart(pipeline.Poller)

	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		env := ctl.Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string {
			if k == "KSEF_NATS_URL" {
				return c.natsURL()
			}
			return ""
		}}
		if err := ctl.Run(t.Context(), append([]string{"ksefctl"}, args...), env); err != nil {
			t.Fatalf("ksefctl %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
		}
		return out.String()
	}
	list := run("dlq", "list")
	if !strings.Contains(list, strconv.FormatUint(dlSeq, 10)) || !strings.Contains(list, inv.id) {
		t.Errorf("ksefctl dlq list does not show dead letter #%d of %s:\n%s", dlSeq, inv.id, list)
	}
	t.Logf("ksefctl dlq list:\n%s", list)
	t.Logf("ksefctl dlq replay: %s", run("dlq", "replay", strconv.FormatUint(dlSeq, 10)))

	evs, ok = c.events.await(30*time.Second, settled(batch), c.reviveExited)
	if !ok {
		t.Fatalf("the replayed invoice has no outcome; %s", summary(evs))
	}
	// The replayed dead letter was the invoice's terminal event until the replay: judge the run
	// without it (the replay's acceptance must then be its one terminal event).
	var judged []natsx.Delivered
	for _, d := range evs {
		if _, ok := d.Event.(*events.DeadLettered); ok && d.Seq == dlSeq {
			continue
		}
		judged = append(judged, d)
	}
	o := c.judge(batch, judged)
	o.check(t, 0)
	if n := len(eventsOf[*events.DeadLettered](evs)); n != 1 {
		t.Errorf("%d dead letters, want the one replayed", n)
	}
}

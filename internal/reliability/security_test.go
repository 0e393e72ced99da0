package reliability

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsperm"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// sessionKeys recovers the AES keys the workers wrap for KSeF: the test holds the emulator's
// private key and unwraps each session's key from the open request on its way.
type sessionKeys struct {
	priv *rsa.PrivateKey
	mu   sync.Mutex
	keys [][]byte
	errs []error
}

func (k *sessionKeys) observe(r *http.Request) bool {
	if r.Method != http.MethodPost || (r.URL.Path != "/v2/sessions/online" && r.URL.Path != "/v2/sessions/batch") {
		return false
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	var req ksefapi.KsefSessionOpenOnlineRequest // the batch request has the same encryptionInfo
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	var key []byte
	if err == nil {
		var wrapped []byte
		if wrapped, err = base64.StdEncoding.DecodeString(req.EncryptionInfo.EncryptedKey); err == nil {
			key, err = rsa.DecryptOAEP(sha256.New(), nil, k.priv, wrapped, nil)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		k.errs = append(k.errs, err)
	} else {
		k.keys = append(k.keys, key)
	}
	return false
}

// TestSecretsNeverLogged runs the pipeline at debug level through a full run with failures
// (KSeF 5xx, ambiguous sends, 429, invalid and undeliverable invoices, a killed worker) and
// checks that the captured logs of every worker hold no KSeF token, no session AES key, no
// storage secret and no invoice content.
func TestSecretsNeverLogged(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys := &sessionKeys{priv: priv}
	c := newCluster(t, clusterOptions{
		emulator: emulator.Config{PrivateKey: priv, Faults: emulator.Faults{ServerErrorRate: 0.05, AmbiguousRate: 0.2, TooManyRate: 0.02}},
		env:      map[string]string{"KSEF_VISUALIZE_ACCEPTED": "true", "KSEF_LOG_LEVEL": "debug"},
	})
	c.ksef.setBefore(keys.observe)
	c.start(pipeline.Sender, pipeline.Poller, pipeline.Visualizer, pipeline.Downloader)

	// Invoices whose lines say something no log may repeat.
	const marker = "Poufna-Pozycja-7Q2X"
	batch := makeBatch(t, "SEC", 40)
	for i, inv := range batch {
		req := demo.Request(inv.seller, i+1, time.Now())
		req.Lines[0].Name = fmt.Sprintf("%s nr %d", marker, i)
		xml, err := fa3.Generate(fa3wire.Request(req))
		if err != nil {
			t.Fatal(err)
		}
		inv.xml, inv.hash, inv.ev.InlineXML = xml, kcrypto.SHA256Base64(xml), xml
	}
	// One that fails validation on the marked content, one for a seller without a token.
	bad := fa3Invalid(t, marker)
	rejected := &events.InvoiceSubmitted{InlineXML: bad}
	rejected.InvoiceID, rejected.ContextNIP = "SEC-INVALID", demo.Sellers[0]
	unknownXML, err := fa3.Generate(fa3wire.Request(demo.Request("1234563218", 5, time.Now())))
	if err != nil {
		t.Fatal(err)
	}
	unknown := &events.InvoiceSubmitted{InlineXML: unknownXML}
	unknown.InvoiceID, unknown.ContextNIP = "SEC-NO-TOKEN", "1234563218"
	for _, ev := range []events.Event{rejected, unknown} {
		if err := c.pub.Publish(t.Context(), ev, nil); err != nil {
			t.Fatal(err)
		}
	}
	c.publishAll(batch[:20])
	if _, ok := c.events.await(time.Minute, outcomesAtLeast(10), nil); ok {
		c.restart(pipeline.Sender) // a SIGKILL mid-run: reconciliation logs too
	}
	c.publishAll(batch[20:])
	evs, ok := c.events.await(2*time.Minute, settled(batch), c.reviveExited)
	if !ok {
		t.Fatalf("the batch did not settle; %s", summary(evs))
	}
	q := &events.QueryRequested{QueryID: "sec-query", SubjectType: events.SubjectBuyer,
		From: events.At(time.Now().Add(-time.Hour)), To: events.At(time.Now().Add(time.Hour))}
	q.ContextNIP = demo.Buyer
	if err := c.pub.Publish(t.Context(), q, nil); err != nil {
		t.Fatal(err)
	}
	evs, ok = c.events.await(time.Minute, func(evs []natsx.Delivered) bool {
		return len(eventsOf[*events.QueryCompleted](evs)) > 0 && len(eventsOf[*events.InvoiceVisualized](evs)) >= len(batch)
	}, c.reviveExited)
	if !ok {
		t.Errorf("the query or the renderings did not finish; %s", summary(evs))
	}
	// The content does travel through the workers (in the events they read), so its absence
	// from the logs below is not an accident of the test.
	carried := 0
	for _, d := range evs {
		if bytes.Contains(d.Data, []byte(marker)) {
			carried++
		}
	}
	if carried < len(batch) {
		t.Errorf("only %d events carry the marked content", carried)
	}
	c.consumersIdle(20*time.Second, pipeline.Sender)
	c.stopWorkers()
	logs := c.logs()

	// The run did log, at debug level, and through failures.
	for _, want := range []string{`"level":"debug"`, "outcome unknown", "message dead-lettered", "invoice rejected"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs never say %q: the run did not go through what this test needs", want)
		}
	}
	keys.mu.Lock()
	defer keys.mu.Unlock()
	if len(keys.errs) > 0 || len(keys.keys) == 0 {
		t.Fatalf("recovered %d session keys, errors %v", len(keys.keys), keys.errs)
	}

	secrets := map[string]string{} // what -> the string that must not appear
	for nip, tok := range c.tokens {
		secrets["token of "+nip] = tok
	}
	secrets["S3 secret key"] = testenv.MinIOSecretKey
	for i, k := range keys.keys {
		secrets[fmt.Sprintf("AES key %d (base64)", i)] = base64.StdEncoding.EncodeToString(k)
		secrets[fmt.Sprintf("AES key %d (hex)", i)] = hex.EncodeToString(k)
		secrets[fmt.Sprintf("AES key %d (HEX)", i)] = strings.ToUpper(hex.EncodeToString(k))
		secrets[fmt.Sprintf("AES key %d (raw)", i)] = string(k)
		// A byte slice logged by zerolog's Bytes is written as a string with \u escapes; the
		// hex and base64 forms above are the ones a careless log line would use.
	}
	secrets["invoice line (marker)"] = marker
	secrets["invoice XML"] = "<Faktura"
	secrets["invoice XML in base64"] = base64.StdEncoding.EncodeToString([]byte("<?xml version"))[:16]
	secrets["invoice P_2 of the batch"] = batch[3].number
	secrets["buyer's name"] = "Nabywca Łódzki"
	for what, s := range secrets {
		if i := strings.Index(logs, s); i >= 0 {
			t.Errorf("the logs hold the %s: ...%s...", what, logs[max(0, i-120):min(len(logs), i+len(s)+40)])
		}
	}
	t.Logf("%d bytes of logs from %d session keys, %d tokens checked", len(logs), len(keys.keys), len(c.tokens))
}

// fa3Invalid returns an FA(3) invoice whose seller's name is far too long: the schema refuses
// it, quoting the offending value.
func fa3Invalid(t *testing.T, marker string) []byte {
	req := demo.Request(demo.Sellers[0], 999, time.Now())
	req.Seller.Name = strings.Repeat(marker+" ", 40)
	xml, err := fa3.Generate(fa3wire.Request(req))
	if err != nil {
		t.Fatal(err)
	}
	return xml
}

// natsUsers are the users of deploy/nats/permissions.conf; passwords are made per test.
var natsUsers = []string{natsperm.Admin, natsperm.ERP, pipeline.Sender, pipeline.Poller, pipeline.Downloader, pipeline.Visualizer}

// TestNATSPermissions runs the pipeline, batch mode on, against a NATS server configured with
// deploy/nats/permissions.conf — the file the compose file and the manifests mount, generated
// from internal/natsperm — after provisioning as the admin user, each worker as its own user and
// bound to what was provisioned (KSEF_NATS_PROVISIONED): everything works and nothing is refused.
// Then each user tries each escalation (delete or update another's consumer, update or delete a
// stream or a KV bucket's stream, publish as another worker, read another's inbox or the shared
// one), and the server refuses it.
func TestNATSPermissions(t *testing.T) {
	pass := map[string]string{}
	for _, u := range natsUsers {
		pass[u] = fmt.Sprintf("%s-%x", u, randBytes(t, 8))
		t.Setenv("KSEF_NATS_"+strings.ToUpper(u)+"_PASSWORD", pass[u])
	}
	users := map[string][2]string{}
	for _, w := range pipeline.Workers() {
		users[w] = [2]string{w, pass[w]}
	}
	c := newCluster(t, clusterOptions{
		natsConfig: filepath.Join(testenv.RepoRoot(t), "deploy", "nats", "permissions.conf"),
		natsUsers:  users,
		env:        map[string]string{"KSEF_VISUALIZE_ACCEPTED": "true", "KSEF_BATCH": "true", "KSEF_NATS_PROVISIONED": "true"},
	})
	// The provisioning step, as the admin user, with the workers' own settings.
	env := map[string]string{}
	for _, kv := range c.workerEnv(pipeline.Sender) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	s, err := pipeline.SettingsFromEnv(func(k string) string { return env[k] }, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	s.NATS.User, s.NATS.Password = natsperm.Admin, pass[natsperm.Admin]
	if s.Batch.Disabled {
		t.Fatal("batch mode is off: this test must run with it on")
	}
	made, err := pipeline.Provision(t.Context(), s)
	if err != nil {
		t.Fatalf("provisioning as admin: %v (made %v)", err, made)
	}
	if !slices.Contains(made, "consumer "+pipeline.SenderBatch) {
		t.Fatalf("provisioning made %v, not the batch consumer", made)
	}
	c.start(pipeline.Workers()...)

	// The ERP, as its own user, submits, and reads the mirror made for it.
	erpCfg := natsx.Config{URL: c.natsURL(), User: natsperm.ERP, Password: pass[natsperm.ERP], ReadStream: natsx.ERPStreamName("")}
	_, erpJS, err := natsx.Connect(t.Context(), erpCfg)
	if err != nil {
		t.Fatal(err)
	}
	erpPub := natsx.NewPublisher(erpJS, erpCfg)
	batch := makeBatch(t, "PERM", 20)
	for _, inv := range batch {
		if err := erpPub.Publish(t.Context(), inv.ev, nil); err != nil {
			t.Fatalf("the ERP user publishing %s: %v", inv.id, err)
		}
	}
	erpEvents := followEvents(t, erpJS, erpCfg)
	evs, ok := erpEvents.await(time.Minute, settled(batch), c.reviveExited)
	if !ok {
		t.Fatalf("the batch did not settle, as read by the ERP user; %s\n%s", summary(evs), permissionLines(c.logs()))
	}
	q := &events.QueryRequested{QueryID: "perm-query", SubjectType: events.SubjectBuyer,
		From: events.At(time.Now().Add(-time.Hour)), To: events.At(time.Now().Add(time.Hour))}
	q.ContextNIP = demo.Buyer
	if err := erpPub.Publish(t.Context(), q, nil); err != nil {
		t.Fatal(err)
	}
	evs, ok = erpEvents.await(time.Minute, func(evs []natsx.Delivered) bool {
		return len(eventsOf[*events.QueryCompleted](evs)) > 0 && len(eventsOf[*events.InvoiceVisualized](evs)) >= len(batch) &&
			len(eventsOf[*events.SessionUpoStored](evs)) > 0
	}, c.reviveExited)
	if !ok {
		t.Errorf("query, renderings and UPOs did not all come; %s", summary(evs))
	}
	o := c.judge(batch, evs)
	o.check(t, 0)
	if lines := permissionLines(c.logs()); lines != "" {
		t.Errorf("the workers were refused something:\n%s", lines)
	}

	// What each user must not do, tried by every user but the admin.
	others := func(u string) string {
		for _, w := range pipeline.Workers() {
			if w != u {
				return w
			}
		}
		return ""
	}
	// The event each user must not fake: one another worker publishes.
	foreignEvent := map[string]string{
		natsperm.ERP: "invoice.accepted", pipeline.Sender: "invoice.accepted", pipeline.Poller: "invoice.sent",
		pipeline.Downloader: "invoice.submitted", pipeline.Visualizer: "query.completed",
	}
	type attempt struct {
		user, subject string
		subscribe     bool
	}
	var attempts []attempt
	for _, u := range natsUsers[1:] {
		other := others(u)
		for _, subj := range []string{
			"$JS.API.STREAM.UPDATE.KSEF", "$JS.API.STREAM.DELETE.KSEF", "$JS.API.STREAM.PURGE.KSEF",
			"$JS.API.STREAM.CREATE.KSEF", "$JS.API.STREAM.MSG.DELETE.KSEF",
			"$JS.API.STREAM.UPDATE.KV_KSEF_STATE", "$JS.API.STREAM.DELETE.KV_KSEF_STATE", "$JS.API.STREAM.PURGE.KV_KSEF_STATE",
			"$JS.API.STREAM.UPDATE.KV_KSEF_failures",
			"$JS.API.CONSUMER.DELETE.KSEF." + other, "$JS.API.CONSUMER.CREATE.KSEF." + other, // delete or update another's
			"$JS.API.CONSUMER.CREATE.KSEF." + other + ".invoice.submitted",
			"$JS.API.CONSUMER.DURABLE.CREATE.KSEF." + other,
			"$JS.API.CONSUMER.DELETE.KSEF." + pipeline.SenderBatch,
			"$JS.API.CONSUMER.MSG.NEXT.KSEF." + other, // steal another's work
			"$JS.ACK.KSEF." + other + ".1.1.1.1.1",    // ack another's message
			foreignEvent[u],
		} {
			attempts = append(attempts, attempt{u, subj, false})
		}
		for _, subj := range []string{natsperm.Inbox(other) + ".>", "_INBOX.>", "invoice.>", ">"} {
			attempts = append(attempts, attempt{u, subj, true})
		}
		if u != natsperm.ERP {
			// Workers never change their own consumer either: it is provisioned.
			attempts = append(attempts, attempt{u, "$JS.API.CONSUMER.CREATE.KSEF." + u, false},
				attempt{u, "$JS.API.CONSUMER.DELETE.KSEF." + u, false})
		}
	}
	attempts = append(attempts,
		// No consumer of its own on the workers' stream either: it has the mirror.
		attempt{natsperm.ERP, "$JS.API.CONSUMER.CREATE.KSEF.erp-billing", false},
		attempt{natsperm.ERP, "$JS.API.CONSUMER.DELETE.KSEF.erp-billing", false},
		attempt{natsperm.ERP, "dlq.invoice.submitted", false}, // fake a dead letter
		attempt{natsperm.ERP, "$KV.KSEF_STATE.inv.x", false},  // touch the sender's state
		attempt{natsperm.ERP, "batch.queued.5265877635", false},
		attempt{pipeline.Sender, "$KV.KSEF_MARKS.x", false}, // the downloader's bucket
		attempt{pipeline.Sender, "$KV.KSEF_failures.poller.1", false},
		attempt{pipeline.Poller, "$KV.KSEF_SESSIONS.x", false},
		attempt{pipeline.Poller, "invoice.sent", false}, // announce a send as the sender
		attempt{pipeline.Downloader, "$KV.KSEF_STATE.x", false},
		attempt{pipeline.Visualizer, "$KV.KSEF_LIMITS.x", false},
		attempt{pipeline.Visualizer, "$JS.API.DIRECT.GET.KV_KSEF_STATE.>", false},
	)
	for _, tc := range attempts {
		verb := "publish to"
		if tc.subscribe {
			verb = "subscribe to"
		}
		t.Run(tc.user+" may not "+verb+" "+tc.subject, func(t *testing.T) {
			t.Parallel()
			err := tryAs(t, c.natsURL(), tc.user, pass[tc.user], tc.subject, tc.subscribe)
			if !errors.Is(err, nats.ErrPermissionViolation) && (err == nil || !strings.Contains(strings.ToLower(err.Error()), "permissions violation")) {
				t.Errorf("%s could %s %s (error %v)", tc.user, verb, tc.subject, err)
			}
		})
	}
	// The same connection check passes for what is allowed, so the refusals above are real:
	// among them the batch subjects and consumer the sender needs, and each user's own inbox.
	for _, ok := range []attempt{
		{natsperm.ERP, "$JS.API.INFO", false}, {pipeline.Sender, "$JS.API.INFO", false},
		{natsperm.ERP, "$JS.API.CONSUMER.CREATE." + natsx.ERPStreamName("") + ".erp-billing", false},
		{natsperm.ERP, "$JS.API.CONSUMER.DELETE." + natsx.ERPStreamName("") + ".erp-billing", false},
		{pipeline.Sender, "$JS.API.CONSUMER.INFO.KSEF." + pipeline.SenderBatch, false},
		{pipeline.Sender, "$JS.API.CONSUMER.MSG.NEXT.KSEF." + pipeline.SenderBatch, false},
		{pipeline.Sender, "dlq.batch.queued.5265877635", false},
		{pipeline.Poller, natsperm.Inbox(pipeline.Poller) + ".>", true},
	} {
		if err := tryAs(t, c.natsURL(), ok.user, pass[ok.user], ok.subject, ok.subscribe); err != nil {
			t.Errorf("%s: an allowed %s was refused: %v", ok.user, ok.subject, err)
		}
	}
	if err := tryAs(t, c.natsURL(), "sender", "wrong", "$JS.API.INFO", false); err == nil {
		t.Error("a wrong password was accepted")
	}
}

// tryAs connects as user, publishes to (or subscribes to) subject, and returns the server's
// asynchronous error, if one comes within two seconds.
func tryAs(t *testing.T, url, user, password, subject string, subscribe bool) error {
	errs := make(chan error, 4)
	nc, err := nats.Connect(url, nats.UserInfo(user, password), nats.MaxReconnects(0),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	if err != nil {
		return err
	}
	defer nc.Close()
	if subscribe {
		if _, err := nc.SubscribeSync(subject); err != nil {
			return err
		}
	} else if err := nc.Publish(subject, []byte("not allowed")); err != nil {
		return err
	}
	if err := nc.Flush(); err != nil {
		return err
	}
	select {
	case err := <-errs:
		return err
	case <-time.After(2 * time.Second):
		return nil
	}
}

func permissionLines(logs string) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(strings.ToLower(l), "permission") {
			out = append(out, l)
		}
	}
	if len(out) > 20 {
		out = out[:20]
	}
	return strings.Join(out, "\n")
}

func randBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

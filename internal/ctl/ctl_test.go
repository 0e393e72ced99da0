package ctl

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

func TestParseConfig(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     map[string]string
		err      string
	}{
		{"plain", "KSEF_NATS_URL=nats://a:4222\nKSEF_STORAGE=local\n", map[string]string{"KSEF_NATS_URL": "nats://a:4222", "KSEF_STORAGE": "local"}, ""},
		{"comments and blanks", "# settings\n\n  KSEF_SUBJECT_PREFIX = acme  \n", map[string]string{"KSEF_SUBJECT_PREFIX": "acme"}, ""},
		{"export and quotes", "export KSEF_S3_SECRET_KEY=\"a b=c\"\nKSEF_X='y'\n", map[string]string{"KSEF_S3_SECRET_KEY": "a b=c", "KSEF_X": "y"}, ""},
		{"empty value", "KSEF_SUBJECT_PREFIX=\n", map[string]string{"KSEF_SUBJECT_PREFIX": ""}, ""},
		{"no equals", "KSEF_NATS_URL\n", nil, "line 1"},
		{"bad key", "A=1\n9X=2\n", nil, "line 2"},
		{"spaces in key", "MY KEY=1\n", nil, "line 1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseConfig([]byte(c.in))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

// TestSettingsPrecedence: a flag beats the environment, which beats the config file; a flag
// given before the command survives the command's own flag set.
func TestSettingsPrecedence(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config")
	os.WriteFile(cfg, []byte("KSEF_NATS_URL=file\nKSEF_SUBJECT_PREFIX=file\nKSEF_STORAGE=file\n"), 0o600)
	env := map[string]string{"KSEF_NATS_URL": "env", "KSEF_SUBJECT_PREFIX": "env"}
	var stderr bytes.Buffer
	o := newOptions(Env{Getenv: func(k string) string { return env[k] }, Stderr: &stderr})
	global := o.flagSet("ksefctl", nil)
	if err := global.Parse([]string{"--config", cfg, "--nats-url", "flag"}); err != nil {
		t.Fatal(err)
	}
	sub := o.flagSet("status", nil) // registers --nats-url again: must not reset it
	if err := sub.Parse([]string{"--connect-timeout", "2s"}); err != nil {
		t.Fatal(err)
	}
	if err := o.loadConfig(); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"KSEF_NATS_URL": "flag", "KSEF_SUBJECT_PREFIX": "env", "KSEF_STORAGE": "file", "KSEF_S3_ENDPOINT": ""} {
		if got := o.getenv(key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if o.connectTimeout != 2*time.Second {
		t.Errorf("connect timeout %s", o.connectTimeout)
	}
	if stderr.Len() != 0 {
		t.Errorf("unexpected warning: %s", stderr.String())
	}

	// A readable file with secrets draws a warning.
	os.WriteFile(cfg, []byte("KSEF_NATS_TOKEN=s3cr3t\n"), 0o600)
	os.Chmod(cfg, 0o644)
	o = newOptions(Env{Getenv: func(string) string { return "" }, Stderr: &stderr})
	o.configPath = cfg
	if err := o.loadConfig(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "readable by others") || strings.Contains(stderr.String(), "s3cr3t") {
		t.Errorf("warning %q", stderr.String())
	}
}

func TestConfigLocation(t *testing.T) {
	home := t.TempDir()
	xdg := filepath.Join(home, "xdg")
	os.MkdirAll(filepath.Join(xdg, "ksefctl"), 0o755)
	os.MkdirAll(filepath.Join(home, ".config", "ksefctl"), 0o755)
	os.WriteFile(filepath.Join(xdg, "ksefctl", "config"), []byte("KSEF_SUBJECT_PREFIX=xdg\n"), 0o600)
	os.WriteFile(filepath.Join(home, ".config", "ksefctl", "config"), []byte("KSEF_SUBJECT_PREFIX=home\n"), 0o600)
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HOME": home, "XDG_CONFIG_HOME": xdg}, "xdg"},
		{map[string]string{"HOME": home}, "home"},
		{map[string]string{"HOME": t.TempDir()}, ""}, // no file: no settings, no error
		{map[string]string{}, ""},
	} {
		o := newOptions(Env{Getenv: func(k string) string { return c.env[k] }})
		if err := o.loadConfig(); err != nil {
			t.Fatal(err)
		}
		if got := o.getenv("KSEF_SUBJECT_PREFIX"); got != c.want {
			t.Errorf("%v: prefix %q, want %q", c.env, got, c.want)
		}
	}
	o := newOptions(Env{Getenv: func(string) string { return "" }})
	o.configPath = filepath.Join(home, "missing")
	if err := o.loadConfig(); ExitCode(err) != ExitUsage {
		t.Errorf("a missing --config file: %v", err)
	}
}

func TestParseTime(t *testing.T) {
	local := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.Local) }
	for _, c := range []struct {
		in   string
		end  bool
		want time.Time
		err  bool
	}{
		{"2026-03-01T10:00:00Z", false, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), false},
		{"2026-03-01T10:00:00.5+01:00", true, time.Date(2026, 3, 1, 9, 0, 0, 5e8, time.UTC), false},
		{"2026-03-01", false, local(2026, 3, 1), false},
		{"2026-03-31", true, local(2026, 4, 1), false}, // an end date includes its day
		{"2026-02-30", false, time.Time{}, true},
		{"yesterday", false, time.Time{}, true},
		{"", false, time.Time{}, true},
	} {
		got, err := parseTime(c.in, c.end)
		if (err != nil) != c.err || !c.err && !got.Equal(c.want) {
			t.Errorf("parseTime(%q, %v) = %v, %v; want %v", c.in, c.end, got, err, c.want)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"10m", now.Add(-10 * time.Minute), false},
		{"2h30m", now.Add(-150 * time.Minute), false},
		{"7d", now.AddDate(0, 0, -7), false},
		{"2026-03-01T00:00:00Z", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), false},
		{"-5m", time.Time{}, true},
		{"soon", time.Time{}, true},
	} {
		got, err := parseSince(c.in, now)
		if (err != nil) != c.err || !c.err && !got.Equal(c.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestCheckSubject(t *testing.T) {
	for s, ok := range map[string]bool{
		"invoice.accepted": true, "dlq.>": true, "invoice.*": true, "*.accepted": true,
		"": false, "invoice..x": false, "a.>.b": false, "invoice.acc*": false, "a b": false,
	} {
		if err := checkSubject(s); (err == nil) != ok {
			t.Errorf("checkSubject(%q) = %v", s, err)
		}
	}
}

// TestParseInterleaved: flags may follow the arguments, "--" ends them.
func TestParseInterleaved(t *testing.T) {
	for _, c := range []struct {
		args      []string
		wantArgs  []string
		wantWait  bool
		wantNIP   string
		wantUsage bool
	}{
		{[]string{"a.xml", "--wait", "b.xml"}, []string{"a.xml", "b.xml"}, true, "", false},
		{[]string{"--nip", "1234567890", "a.xml"}, []string{"a.xml"}, false, "1234567890", false},
		{[]string{"a.xml", "--", "--wait", "-x"}, []string{"a.xml", "--wait", "-x"}, false, "", false},
		{[]string{"--", "a.xml", "--wait"}, []string{"a.xml", "--wait"}, false, "", false},
		{[]string{"a.xml", "--bogus"}, nil, false, "", true},
	} {
		var stderr bytes.Buffer
		o := newOptions(Env{Getenv: func(string) string { return "" }, Stderr: &stderr, Stdout: &stderr})
		var wait bool
		var nip string
		cmd, _ := findCommand("submit")
		fs := o.flagSet("submit", func(fs *flag.FlagSet) {
			fs.BoolVar(&wait, "wait", false, "")
			fs.StringVar(&nip, "nip", "", "")
		})
		args, err := o.parse(cmd, fs, c.args)
		if c.wantUsage {
			if ExitCode(err) != ExitUsage {
				t.Errorf("%v: %v, want a usage error", c.args, err)
			}
			continue
		}
		if err != nil || !slices.Equal(args, c.wantArgs) || wait != c.wantWait || nip != c.wantNIP {
			t.Errorf("%v: args %q wait %v nip %q err %v", c.args, args, wait, nip, err)
		}
	}
}

func TestRedactURLs(t *testing.T) {
	got := redactURLs("nats://alice:secret@a:4222, nats://b:4222,tls://tok@c:4443")
	if strings.Contains(got, "secret") || strings.Contains(got, "alice") || strings.Contains(got, "tok@") || !strings.Contains(got, "nats://b:4222") {
		t.Fatalf("redactURLs: %s", got)
	}
}

func TestExitCode(t *testing.T) {
	for err, want := range map[error]int{
		nil:                              ExitOK,
		usagef("x"):                      ExitUsage,
		failedf("x"):                     ExitFailed,
		&Error{Code: ExitTimeout}:        ExitTimeout,
		errors.New("unclassified"):       ExitFailed,
		fmt.Errorf("w: %w", usagef("x")): ExitUsage,
	} {
		if got := ExitCode(err); got != want {
			t.Errorf("ExitCode(%v) = %d, want %d", err, got, want)
		}
	}
}

func TestReplayMsgID(t *testing.T) {
	a := replayMsgID(&events.DeadLettered{OriginalMsgID: "invoice.submitted:1:x:ab"}, 42)
	b := replayMsgID(&events.DeadLettered{OriginalSeq: 7}, 42)
	if a != "invoice.submitted:1:x:ab:replay-42" || b != "seq-7:replay-42" {
		t.Fatalf("replay ids %q, %q", a, b)
	}
	if replayMsgID(&events.DeadLettered{OriginalMsgID: "m"}, 43) == replayMsgID(&events.DeadLettered{OriginalMsgID: "m"}, 42) {
		t.Fatal("two dead letters of one message replay under one id")
	}
}

// delivered builds a stream entry, filling the fields Encode would.
func delivered(seq uint64, e events.Event) natsx.Delivered {
	m := e.Common()
	m.V, m.Type, m.OccurredAt = events.Version, e.EventType(), events.At(time.Unix(int64(seq), 0))
	m.EventID = events.MsgID(e)
	return natsx.Delivered{Subject: e.EventType(), Seq: seq, Time: m.OccurredAt.Time, Event: e}
}

func meta(nip, id string) events.Meta { return events.Meta{ContextNIP: nip, InvoiceID: id} }

// TestHistory: an invoice's history links its session's events and renderings through the
// session and KSeF number, but not other invoices of the same session.
func TestHistory(t *testing.T) {
	const nip, other = "5261040828", "7740001454"
	ref := func(b, k string) *events.ObjectRef { return &events.ObjectRef{Bucket: b, Key: k, Size: 1} }
	stream := []events.Event{
		&events.InvoiceSubmitted{Meta: meta(nip, "FV-1"), XML: ref("inv", "erp-outbox/FV-1.xml")},
		&events.InvoiceSubmitted{Meta: meta(other, "FV-1"), InlineXML: []byte("<x/>")}, // same id, other context
		&events.InvoiceSubmitted{Meta: meta(nip, "FV-2"), InlineXML: []byte("<y/>")},
		&events.InvoiceSent{Meta: meta(nip, "FV-1"), SessionID: "S1", KsefInvoiceID: "R1", Mode: "online", XML: ref("inv", "erp-outbox/FV-1.xml")},
		&events.InvoiceSent{Meta: meta(nip, "FV-2"), SessionID: "S1", KsefInvoiceID: "R2", Mode: "online", XML: ref("inv", "sent/FV-2.xml")},
		&events.InvoiceAccepted{Meta: meta(nip, "FV-1"), KsefNumber: "K1", SessionID: "S1", XML: ref("inv", "erp-outbox/FV-1.xml")},
		&events.InvoiceAccepted{Meta: meta(nip, "FV-2"), KsefNumber: "K2", SessionID: "S1"},
		&events.InvoiceVisualized{Meta: meta(nip, "FV-2"), KsefNumber: "K2", Format: "pdf", Language: "pl", Document: ref("vis", "K2.pdf")},
		&events.InvoiceVisualized{Meta: meta(nip, "FV-1"), KsefNumber: "K1", Format: "pdf", Language: "pl", Document: ref("vis", "K1.pdf")},
		&events.SessionClosed{Meta: meta(nip, ""), SessionID: "S1", Mode: "online", InvoiceCount: 2},
		&events.SessionUpoStored{Meta: meta(nip, ""), SessionID: "S1", UPO: ref("upo", "S1.xml"), KsefNumbers: []string{"K1", "K2"}},
		&events.InvoiceDownloaded{Meta: meta("5213017228", ""), QueryID: "Q1", KsefNumber: "K1", SubjectType: "subject2", XML: ref("inv", "downloaded/K1.xml")},
	}
	var all []natsx.Delivered
	for i, e := range stream {
		all = append(all, delivered(uint64(i+1), e))
	}
	read := func(id, nip string) (*history, summary) {
		h := newHistory(id, nip)
		for _, d := range all {
			h.add(d)
		}
		return h, h.summarize()
	}
	seqs := func(h *history) []uint64 {
		var out []uint64
		for _, d := range h.entries {
			out = append(out, d.Seq)
		}
		return out
	}

	h, s := read("FV-1", nip)
	if got, want := seqs(h), []uint64{1, 4, 6, 9, 10, 11, 12}; !slices.Equal(got, want) {
		t.Errorf("FV-1 of %s: events %v, want %v", nip, got, want)
	}
	if s.State != "accepted" || s.KsefNumber != "K1" || s.Artifacts.XML.Key != "erp-outbox/FV-1.xml" ||
		s.Artifacts.PDF.Key != "K1.pdf" || s.Artifacts.UPO.Key != "S1.xml" {
		t.Errorf("FV-1 summary %+v", s)
	}
	h, _ = read("FV-1", "")
	if len(h.nips) != 2 {
		t.Errorf("FV-1 of any context: contexts %v", h.nips)
	}
	h, s = read("K1", "")
	if s.State != "accepted" || s.Artifacts.PDF.Key != "K1.pdf" || !slices.Contains(seqs(h), 12) {
		t.Errorf("by KSeF number: %v %+v", seqs(h), s)
	}
	h, s = read("Q1", "")
	if s.State != "downloaded" || s.Artifacts.XML != nil || !slices.Equal(seqs(h), []uint64{12}) {
		t.Errorf("by query: %v %+v", seqs(h), s)
	}
	h, _ = read("S1", "")
	if got := seqs(h); !slices.Equal(got, []uint64{4, 5, 10, 11}) {
		t.Errorf("by session: %v", got)
	}
	h, _ = read("nothing", "")
	if len(h.entries) != 0 {
		t.Errorf("unknown id matched %v", seqs(h))
	}
}

// TestDescribe: every event type has a one-line description naming its key field.
func TestDescribe(t *testing.T) {
	for _, c := range []struct {
		e    events.Event
		want string
	}{
		{&events.InvoiceSubmitted{Generate: []byte("{}"), Visualize: true}, "structured data"},
		{&events.InvoiceSent{SessionID: "S1", Mode: "batch"}, "batch session S1"},
		{&events.InvoiceAccepted{KsefNumber: "K1", DuplicateOfEarlierSend: true}, "duplicate of our earlier send"},
		{&events.InvoiceRejected{Code: 430, Stage: "status", Description: "bad\n  xml", Details: []string{"line 3"}}, "status stage, code 430: bad xml (line 3)"},
		{&events.InvoiceDownloaded{KsefNumber: "K1", QueryID: "Q1"}, "K1 by query Q1"},
		{&events.VisualizeRequested{Format: "html", Language: "en"}, "html en"},
		{&events.InvoiceVisualized{Format: "pdf", Language: "pl", Document: &events.ObjectRef{Bucket: "b", Key: "k"}}, "b/k"},
		{&events.SessionClosed{SessionID: "S1", InvoiceCount: 3}, "3 invoices"},
		{&events.SessionUpoStored{SessionID: "S1", KsefNumbers: []string{"a"}}, "UPO of session S1"},
		{&events.QueryRequested{QueryID: "Q1", Incremental: true}, "incremental"},
		{&events.QueryCompleted{QueryID: "Q1", InvoiceCount: 7}, "7 invoices"},
		{&events.DeadLettered{ErrorKind: events.KindMalformed, Stage: "sender", Reason: "not msgpack"}, "malformed by sender"},
	} {
		if got := describe(c.e); !strings.Contains(got, c.want) || strings.Contains(got, "\n") {
			t.Errorf("describe(%T) = %q, want %q in one line", c.e, got, c.want)
		}
	}
}

// TestUsage: help lists every command and its exit codes; a command's help lists its own flags
// and not the connection flags.
func TestUsage(t *testing.T) {
	var out bytes.Buffer
	env := Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &out}
	if err := Run(context.Background(), []string{"ksefctl", "--help"}, env); err != nil {
		t.Fatal(err)
	}
	for _, c := range commands() {
		if !strings.Contains(out.String(), "\n  "+c.name+" ") {
			t.Errorf("help lacks %s", c.name)
		}
	}
	out.Reset()
	if err := Run(context.Background(), []string{"ksefctl", "get", "--help"}, env); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "--pdf") || strings.Contains(s, "--nats-url URLs") {
		t.Errorf("get --help:\n%s", s)
	}
}

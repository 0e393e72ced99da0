package ctl

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

const statusHelp = `
Reads the event stream for everything about ID: the ERP's invoice id (of any context, or of
--nip), a query id, a KSeF number or a KSeF session id. Prints every event with its time, type
and outcome, the current state, and where the artifacts are (XML, UPO, PDF/HTML, query parts).
An id without events is exit code 1.`

const getHelp = `
Copies an artifact of an invoice (by ERP invoice id or KSeF number) from object storage to FILE
(- for stdout). Its location is read from the event stream, as "ksefctl status" shows it, and
its SHA-256 is checked against the event. Exit code 1 when there is no such artifact yet or the
object is missing from storage.`

// history is everything the stream holds about one id.
type history struct {
	id, nip  string
	entries  []natsx.Delivered
	nips     map[string]bool // contexts of the invoice-level events found by id
	ksef     map[string]bool // KSeF numbers of the invoice
	sessions map[string]bool // sessions it was sent in
}

func newHistory(id, nip string) *history {
	return &history{id: id, nip: nip, nips: map[string]bool{}, ksef: map[string]bool{}, sessions: map[string]bool{}}
}

// add keeps d when it concerns the id; later events are linked through the KSeF numbers and
// sessions of earlier ones (the stream is read in order).
func (h *history) add(d natsx.Delivered) {
	if d.Err != nil {
		return
	}
	m := d.Event.Common()
	nipOK := h.nip == "" || m.ContextNIP == h.nip
	byInvoice := m.InvoiceID == h.id && nipOK
	match := byInvoice
	switch ev := d.Event.(type) {
	case *events.InvoiceSent:
		match = match || ev.SessionID == h.id
	case *events.InvoiceAccepted:
		match = match || ev.KsefNumber == h.id
	case *events.InvoiceDownloaded:
		match = match || ev.QueryID == h.id && nipOK || ev.KsefNumber == h.id || h.ksef[ev.KsefNumber]
	case *events.QueryRequested:
		match = match || ev.QueryID == h.id && nipOK
	case *events.QueryCompleted:
		match = match || ev.QueryID == h.id && nipOK
	case *events.VisualizeRequested:
		match = match || ev.KsefNumber != "" && (ev.KsefNumber == h.id || h.ksef[ev.KsefNumber])
	case *events.InvoiceVisualized:
		match = match || ev.KsefNumber != "" && (ev.KsefNumber == h.id || h.ksef[ev.KsefNumber])
	case *events.SessionClosed:
		match = ev.SessionID == h.id || h.sessions[ev.SessionID]
	case *events.SessionUpoStored:
		match = ev.SessionID == h.id || h.sessions[ev.SessionID] ||
			slices.ContainsFunc(ev.KsefNumbers, func(n string) bool { return n == h.id || h.ksef[n] })
	}
	if !match {
		return
	}
	h.entries = append(h.entries, d)
	if byInvoice {
		h.nips[m.ContextNIP] = true
	}
	switch ev := d.Event.(type) {
	case *events.InvoiceSent:
		h.sessions[ev.SessionID] = true
	case *events.InvoiceAccepted:
		h.ksef[ev.KsefNumber] = true
		h.sessions[ev.SessionID] = true
	case *events.InvoiceDownloaded:
		h.ksef[ev.KsefNumber] = true
	}
}

// readHistory reads the stream (from since, when set) for id.
func readHistory(ctx context.Context, cn *conn, id, nip string, since time.Time) (*history, error) {
	h := newHistory(id, nip)
	err := cn.read(ctx, natsx.FollowOptions{Since: since}, func(d natsx.Delivered) error {
		h.add(d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the stream: %w", err)
	}
	if len(h.entries) == 0 {
		what := fmt.Sprintf("no events for invoice %q", id)
		if nip != "" {
			what += " of context " + nip
		}
		return nil, failedf("%s (nor for a query, KSeF number or session of that id)", what)
	}
	return h, nil
}

// artifacts are where an invoice's or query's files are.
type artifacts struct {
	XML   *objectRef  `json:"xml,omitempty"`
	UPO   *objectRef  `json:"upo,omitempty"`
	PDF   *objectRef  `json:"pdf,omitempty"`
	HTML  *objectRef  `json:"html,omitempty"`
	Parts []objectRef `json:"parts,omitempty"`
}

// summary is the state of the id and its artifacts.
type summary struct {
	State      string `json:"state"`
	KsefNumber string `json:"ksef_number,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// Warnings are what the sender found that KSeF does not check (the latest invoice.sent's
	// or invoice.accepted's).
	Warnings  []string  `json:"warnings,omitempty"`
	Artifacts artifacts `json:"artifacts"`
}

func (h *history) summarize() summary {
	var s summary
	var downloaded *objectRef
	for _, d := range h.entries {
		switch ev := d.Event.(type) {
		case *events.InvoiceSubmitted:
			s.State, s.Reason, s.Warnings = "submitted", "", nil
			if ev.XML != nil {
				s.Artifacts.XML = jsonRef(ev.XML)
			}
		case *events.InvoiceSent:
			s.State, s.Warnings = "sent", ev.Warnings
			if ev.XML != nil {
				s.Artifacts.XML = jsonRef(ev.XML)
			}
		case *events.InvoiceAccepted:
			s.State, s.KsefNumber, s.Reason, s.Warnings = "accepted", ev.KsefNumber, "", ev.Warnings
			if ev.XML != nil {
				s.Artifacts.XML = jsonRef(ev.XML)
			}
			if ev.UPO != nil {
				s.Artifacts.UPO = jsonRef(ev.UPO)
			}
		case *events.InvoiceRejected:
			s.State, s.Reason = "rejected", rejection(ev)
		case *events.DeadLettered:
			s.State, s.Reason = "dead-lettered", describe(ev)
		case *events.InvoiceDownloaded:
			if s.State == "" || s.State == "downloaded" {
				s.State, s.KsefNumber = "downloaded", ev.KsefNumber
			}
			if ev.KsefNumber == h.id {
				downloaded = jsonRef(ev.XML)
			}
		case *events.QueryRequested:
			s.State = "requested"
		case *events.QueryCompleted:
			s.State = "completed"
			s.Artifacts.Parts = append(s.Artifacts.Parts, jsonRefs(ev.Parts)...)
		case *events.InvoiceVisualized:
			if ev.Format == events.FormatHTML {
				s.Artifacts.HTML = jsonRef(ev.Document)
			} else {
				s.Artifacts.PDF = jsonRef(ev.Document)
			}
		case *events.SessionUpoStored:
			if s.Artifacts.UPO == nil || h.sessions[ev.SessionID] || ev.SessionID == h.id {
				s.Artifacts.UPO = jsonRef(ev.UPO)
			}
		case *events.SessionClosed:
			if s.State == "" {
				s.State = "session closed"
			}
		}
	}
	if s.Artifacts.XML == nil {
		s.Artifacts.XML = downloaded
	}
	if s.State == "" {
		s.State = "unknown"
	}
	return s
}

type statusFlags struct {
	nip, since, output string
}

func (f *statusFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.nip, "nip", "", "only the invoice of this context `NIP`")
	fs.StringVar(&f.since, "since", "", "read the stream from this `time` or duration ago (default: all of it)")
}

func (f *statusFlags) check(o *options, cmd string) (time.Time, error) {
	if f.nip != "" && !ksef.IsNIP(f.nip) {
		return time.Time{}, usagef("%s: --nip %q is not 10 digits", cmd, f.nip)
	}
	if f.since == "" {
		return time.Time{}, nil
	}
	t, err := parseSince(f.since, o.env.Now())
	if err != nil {
		return t, usagef("%s: --since %v", cmd, err)
	}
	return t, nil
}

// parseSince reads a duration ago ("90m", "2h", "7d") or a time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	t, err := parseTime(s, false)
	if err != nil {
		return t, fmt.Errorf("%q: want a duration (10m, 2h, 7d), RFC 3339 or YYYY-MM-DD", s)
	}
	return t, nil
}

// statusEntry is the JSON form of one event in a history.
type statusEntry struct {
	eventJSON
	Type    string `json:"type"`
	Summary string `json:"summary"`
}

func runStatus(ctx context.Context, o *options, args []string) error {
	c, _ := findCommand("status")
	var f statusFlags
	fs := o.flagSet(c.name, func(fs *flag.FlagSet) {
		f.register(fs)
		outputFlag(fs, &f.output)
	})
	rest, err := o.parse(c, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(rest) != 1 {
		return usagef("status: name one invoice id, query id, KSeF number or session id")
	}
	since, err := f.check(o, "status")
	if err != nil {
		return err
	}
	cn, err := o.connect(ctx)
	if err != nil {
		return err
	}
	defer cn.close()
	h, err := readHistory(ctx, cn, rest[0], f.nip, since)
	if err != nil {
		return err
	}
	s := h.summarize()
	w := o.env.Stdout
	if f.output == "json" {
		out := struct {
			ID       string   `json:"id"`
			Contexts []string `json:"contexts"`
			summary
			Events []statusEntry `json:"events"`
		}{ID: h.id, Contexts: sortedKeys(h.nips), summary: s}
		for _, d := range h.entries {
			out.Events = append(out.Events, statusEntry{toJSON(d), d.Event.EventType(), describe(d.Event)})
		}
		return writeJSON(w, out)
	}
	fmt.Fprintf(w, "%s", h.id)
	if n := sortedKeys(h.nips); len(n) > 0 {
		fmt.Fprintf(w, " (context %s)", strings.Join(n, ", "))
	}
	fmt.Fprintln(w)
	tw := newTable(w)
	fmt.Fprintln(tw, "TIME\tSEQ\tEVENT\tNIP\tDETAILS")
	for _, d := range h.entries {
		bare, _ := cn.subj.Bare(d.Subject)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", showTime(d.Time), d.Seq, bare, orDash(d.Event.Common().ContextNIP), describe(d.Event))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nstate: %s", s.State)
	if s.KsefNumber != "" {
		fmt.Fprintf(w, ", KSeF number %s", s.KsefNumber)
	}
	if s.Reason != "" {
		fmt.Fprintf(w, "\nreason: %s", s.Reason)
	}
	for _, warning := range s.Warnings {
		fmt.Fprintf(w, "\nwarning: %s", warning)
	}
	fmt.Fprintln(w)
	a := s.Artifacts
	tw = newTable(w)
	for _, r := range []struct {
		name string
		ref  *objectRef
	}{{"xml", a.XML}, {"upo", a.UPO}, {"pdf", a.PDF}, {"html", a.HTML}} {
		if r.ref != nil {
			fmt.Fprintf(tw, "%s:\t%s/%s\t%d bytes\n", r.name, r.ref.Bucket, r.ref.Key, r.ref.Size)
		}
	}
	for i := range a.Parts {
		fmt.Fprintf(tw, "part %d:\t%s/%s\t%d bytes\n", i+1, a.Parts[i].Bucket, a.Parts[i].Key, a.Parts[i].Size)
	}
	tw.Flush()
	if len(h.nips) > 1 && f.nip == "" {
		fmt.Fprintf(w, "note: several contexts use invoice id %s; --nip chooses one\n", h.id)
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func runGet(ctx context.Context, o *options, args []string) error {
	c, _ := findCommand("get")
	var f statusFlags
	var out string
	kinds := map[string]*bool{"xml": new(bool), "upo": new(bool), "pdf": new(bool), "html": new(bool)}
	fs := o.flagSet(c.name, func(fs *flag.FlagSet) {
		fs.BoolVar(kinds["xml"], "xml", false, "the invoice's FA(3) XML")
		fs.BoolVar(kinds["upo"], "upo", false, "the UPO (KSeF's official receipt) of its session")
		fs.BoolVar(kinds["pdf"], "pdf", false, "its PDF rendering")
		fs.BoolVar(kinds["html"], "html", false, "its HTML rendering")
		fs.StringVar(&out, "o", "", "write to `FILE` (- for stdout)")
		f.register(fs)
	})
	rest, err := o.parse(c, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(rest) != 1 {
		return usagef("get: name one invoice id or KSeF number")
	}
	var kind string
	for _, k := range []string{"xml", "upo", "pdf", "html"} {
		if *kinds[k] {
			if kind != "" {
				return usagef("get: choose one of --xml, --upo, --pdf, --html")
			}
			kind = k
		}
	}
	if kind == "" {
		return usagef("get: say what to get: --xml, --upo, --pdf or --html")
	}
	if out == "" {
		return usagef("get: -o FILE is required (- for stdout)")
	}
	since, err := f.check(o, "get")
	if err != nil {
		return err
	}
	cn, err := o.connect(ctx)
	if err != nil {
		return err
	}
	defer cn.close()
	h, err := readHistory(ctx, cn, rest[0], f.nip, since)
	if err != nil {
		return err
	}
	if len(h.nips) > 1 {
		return usagef("get: contexts %s all have an invoice %s: choose one with --nip", strings.Join(sortedKeys(h.nips), ", "), h.id)
	}
	s := h.summarize()
	ref := (*events.ObjectRef)(map[string]*objectRef{"xml": s.Artifacts.XML, "upo": s.Artifacts.UPO, "pdf": s.Artifacts.PDF, "html": s.Artifacts.HTML}[kind])
	if ref == nil {
		why := map[string]string{
			"xml":  "no event names its XML",
			"upo":  "its session's UPO has not been stored yet",
			"pdf":  "no PDF rendering has been stored (invoice.visualized)",
			"html": "no HTML rendering has been stored (invoice.visualized)",
		}[kind]
		return failedf("%s has no %s: %s (state: %s)", h.id, strings.ToUpper(kind), why, s.State)
	}
	store, _, err := o.openStore()
	if err != nil {
		return err
	}
	n, err := copyObject(ctx, store, ref, out, o.env.Stdout)
	if errors.Is(err, storage.ErrNotFound) {
		return failedf("the %s of %s is missing from storage: %s (the event names it, the store has no such object)",
			strings.ToUpper(kind), h.id, showRef(ref))
	}
	if err != nil {
		return err
	}
	if out != "-" {
		fmt.Fprintf(o.env.Stderr, "%s: %d bytes from %s\n", out, n, showRef(ref))
	}
	return nil
}

// copyObject copies the object ref names to path (stdout for "-"), checking its SHA-256. A file
// is written beside its final name and renamed, so a failed copy leaves nothing half-written.
func copyObject(ctx context.Context, store storage.Store, ref *events.ObjectRef, path string, stdout io.Writer) (int64, error) {
	rc, _, err := store.Get(ctx, ref.Bucket, ref.Key)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return 0, err
		}
		return 0, storageErr(err, "reading %s", showRef(ref))
	}
	defer rc.Close()
	hash := sha256.New()
	var w io.Writer = stdout
	var tmp *os.File
	if path != "-" {
		if tmp, err = os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*"); err != nil {
			return 0, &Error{Code: ExitUsage, Err: err}
		}
		defer func() {
			if tmp != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		w = tmp
	}
	n, err := io.Copy(io.MultiWriter(w, hash), rc)
	if err != nil {
		return n, storageErr(err, "copying %s", showRef(ref))
	}
	if sum := base64.StdEncoding.EncodeToString(hash.Sum(nil)); ref.SHA256 != "" && sum != ref.SHA256 {
		return n, fmt.Errorf("%s: SHA-256 %s does not match the event's %s: the object was changed after it was stored", showRef(ref), sum, ref.SHA256)
	}
	if tmp == nil {
		return n, nil
	}
	if err := tmp.Close(); err != nil {
		return n, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return n, err
	}
	tmp = nil
	return n, nil
}

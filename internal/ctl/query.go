package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ksef-pipeline/ksef-pipeline/internal/downloader"
	"github.com/ksef-pipeline/ksef-pipeline/internal/names"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

const queryHelp = `
Asks the pipeline's downloader for the invoices of a KSeF context (query.requested): those it
bought (--subject buyer, KSeF subject2), sold (seller, subject1), is a third party to (third,
subject3) or is authorised for (authorized, subjectAuthorized), stored in KSeF between --from and
--to (default now). Times are RFC 3339 or YYYY-MM-DD (local midnight; a --to date includes
that day). KSeF allows at most three months per query; "ksefctl sync" has no such limit.

--wait follows the query to query.completed and lists the downloaded invoices. Exit code: 0
completed, 1 the query failed (dead-lettered), 2 bad flags or no connection, 3 timed out.`

const syncHelp = `
Continues downloading a context's invoices from where the previous sync stopped: an incremental
query (incremental: true) that starts at the high-water mark the downloader keeps for the context
and subject type. The first sync of a context needs --from.

--status lists the high-water marks instead (all, or those of --nip and --subject).`

// subjectTypes maps the command line's names to the events' subject types.
var subjectTypes = map[string]string{
	"buyer": events.SubjectBuyer, "seller": events.SubjectSeller,
	"third": events.SubjectThird, "authorized": events.SubjectAuthorized,
	events.SubjectBuyer: events.SubjectBuyer, events.SubjectSeller: events.SubjectSeller,
	events.SubjectThird: events.SubjectThird, events.SubjectAuthorized: events.SubjectAuthorized,
}

func parseSubject(cmd, s string) (string, error) {
	if s == "" {
		return "", usagef("%s: --subject is required: buyer, seller, third or authorized", cmd)
	}
	t, ok := subjectTypes[s]
	if !ok {
		return "", usagef("%s: --subject %q: want buyer, seller, third or authorized", cmd, s)
	}
	return t, nil
}

// parseTime reads RFC 3339 or a date (midnight in the local time zone). A date that ends a
// range (end) means the end of that day.
func parseTime(s string, end bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation(time.DateOnly, s, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2026-03-01T00:00:00Z) or YYYY-MM-DD", s)
	}
	if end {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

type queryFlags struct {
	nip, subject, from, to, id, output string
	wait, status                       bool
	timeout                            time.Duration
}

func (f *queryFlags) register(fs *flag.FlagSet, sync bool) {
	fs.StringVar(&f.nip, "nip", "", "the context's `NIP`")
	fs.StringVar(&f.subject, "subject", "", "whose invoices (the context's `role`): buyer, seller, third or authorized (or subject1, ...)")
	if sync {
		fs.StringVar(&f.from, "from", "", "start `time` of the first sync of a context (RFC 3339 or YYYY-MM-DD)")
		fs.BoolVar(&f.status, "status", false, "list the high-water marks instead")
	} else {
		fs.StringVar(&f.from, "from", "", "start `time` (RFC 3339 or YYYY-MM-DD)")
		fs.StringVar(&f.to, "to", "", "end `time` (default now)")
	}
	fs.StringVar(&f.id, "id", "", "query `id` (default: generated)")
	fs.BoolVar(&f.wait, "wait", false, "wait for query.completed")
	f.timeout = 10 * time.Minute
	fs.DurationVar(&f.timeout, "timeout", f.timeout, "with --wait, give up after this `duration` (exit code 3)")
	outputFlag(fs, &f.output)
}

func runQuery(ctx context.Context, o *options, args []string) error {
	c, _ := findCommand("query")
	var f queryFlags
	fs := o.flagSet(c.name, func(fs *flag.FlagSet) { f.register(fs, false) })
	rest, err := o.parse(c, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(rest) > 0 {
		return usagef("query: unexpected arguments %q", rest)
	}
	req, err := f.request(o.env.Now(), "query")
	if err != nil {
		return err
	}
	if f.from == "" {
		return usagef("query: --from is required")
	}
	from, to, err := f.times(o.env.Now())
	if err != nil {
		return err
	}
	if to.IsZero() && o.env.Now().After(from.AddDate(0, downloader.MaxRangeMonths, 0)) ||
		!to.IsZero() && to.After(from.AddDate(0, downloader.MaxRangeMonths, 0)) {
		return usagef("query: %s..%s is longer than %d months, KSeF's limit for one query: split it, or use ksefctl sync",
			f.from, orDash(f.to), downloader.MaxRangeMonths)
	}
	req.From = events.At(from)
	if !to.IsZero() {
		req.To = events.At(to)
	}
	cn, err := o.connect(ctx)
	if err != nil {
		return err
	}
	defer cn.close()
	return publishQuery(ctx, o, cn, req, f)
}

// request builds the query from the common flags; From and To are left to the caller.
func (f *queryFlags) request(now time.Time, cmd string) (*events.QueryRequested, error) {
	if f.nip == "" {
		return nil, usagef("%s: --nip is required (the context whose invoices to download)", cmd)
	}
	if !ksef.IsNIP(f.nip) {
		return nil, usagef("%s: --nip %q is not 10 digits", cmd, f.nip)
	}
	subject, err := parseSubject(cmd, f.subject)
	if err != nil {
		return nil, err
	}
	id := f.id
	if id == "" {
		id = fmt.Sprintf("ksefctl-%s-%s-%s", cmd, subject, now.UTC().Format("20060102T150405.000Z"))
	}
	if err := checkInvoiceID(id); err != nil {
		return nil, usagef("%s: --id: %v", cmd, strings.Replace(err.Error(), "invoice id", "query id", 1))
	}
	q := &events.QueryRequested{QueryID: id, SubjectType: subject}
	q.ContextNIP = f.nip
	return q, nil
}

// times parses --from and --to (zero when not given) and checks that from is before to, or
// before now.
func (f *queryFlags) times(now time.Time) (from, to time.Time, err error) {
	if from, err = parseTime(f.from, false); err != nil {
		return from, to, usagef("query: --from %v", err)
	}
	if f.to == "" {
		if !from.Before(now) {
			return from, to, usagef("query: --from %s is in the future", f.from)
		}
		return from, to, nil
	}
	if to, err = parseTime(f.to, true); err != nil {
		return from, to, usagef("query: --to %v", err)
	}
	if !from.Before(to) {
		return from, to, usagef("query: --from %s is not before --to %s", f.from, f.to)
	}
	return from, to, nil
}

func publishQuery(ctx context.Context, o *options, cn *conn, q *events.QueryRequested, f queryFlags) error {
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	ack, err := cn.pub.PublishAck(pctx, q, nil)
	cancel()
	if err != nil {
		var fe *events.FieldError
		if errors.As(err, &fe) {
			return usagef("%v", err)
		}
		return fmt.Errorf("publishing the query: %w", err)
	}
	res := &queryResult{QueryID: q.QueryID, NIP: q.ContextNIP, SubjectType: q.SubjectType, EventID: q.EventID,
		Seq: ack.Sequence, Duplicate: ack.Duplicate, State: "requested"}
	if !f.wait {
		if f.output == "json" {
			return writeJSON(o.env.Stdout, res)
		}
		fmt.Fprintf(o.env.Stdout, "query %s requested for %s as %s (%s, stream sequence %d)\nFollow it with: ksefctl status %s\n",
			q.QueryID, q.ContextNIP, q.SubjectType, describe(q), ack.Sequence, q.QueryID)
		return nil
	}
	return waitQuery(ctx, o, cn, res, f)
}

// queryResult is what became of a query.
type queryResult struct {
	QueryID       string          `json:"query_id"`
	NIP           string          `json:"context_nip"`
	SubjectType   string          `json:"subject_type"`
	EventID       string          `json:"event_id"`
	Seq           uint64          `json:"seq"`
	Duplicate     bool            `json:"duplicate,omitempty"`
	State         string          `json:"state"` // requested, completed, dead-lettered
	InvoiceCount  int             `json:"invoice_count"`
	Parts         []objectRef     `json:"parts,omitempty"`
	HighWaterMark *time.Time      `json:"high_water_mark,omitempty"`
	Reason        string          `json:"reason,omitempty"`
	Invoices      []downloadedRef `json:"invoices"`
}

type downloadedRef struct {
	KsefNumber string     `json:"ksef_number"`
	XML        *objectRef `json:"xml"`
}

func waitQuery(ctx context.Context, o *options, cn *conn, res *queryResult, f queryFlags) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	stream, errc := cn.watch(ctx, res.Seq, []string{cn.subj.InvoiceDownloaded(), cn.subj.QueryCompleted(),
		cn.subj.DeadLetter(cn.subj.QueryRequested())})
	p := newProgress(o.env.Stderr, o.env.Interactive, o.env.Now, 0)
	p.update(0, "waiting for the downloader")
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	seen := map[string]bool{}
	var waitErr error
loop:
	for res.State == "requested" {
		select {
		case d, ok := <-stream:
			if !ok {
				select {
				case err := <-errc:
					waitErr = fmt.Errorf("following the stream: %w", err)
				default:
					waitErr = ctx.Err()
				}
				break loop
			}
			if d.Err != nil {
				continue
			}
			switch ev := d.Event.(type) {
			case *events.InvoiceDownloaded:
				if ev.QueryID == res.QueryID && ev.ContextNIP == res.NIP && !seen[ev.KsefNumber] {
					seen[ev.KsefNumber] = true
					res.Invoices = append(res.Invoices, downloadedRef{ev.KsefNumber, jsonRef(ev.XML)})
					p.update(0, fmt.Sprintf("downloaded %d invoices", len(res.Invoices)))
				}
			case *events.QueryCompleted:
				if ev.QueryID == res.QueryID && ev.ContextNIP == res.NIP {
					res.State, res.InvoiceCount, res.Parts = "completed", ev.InvoiceCount, jsonRefs(ev.Parts)
					if !ev.HighWaterMark.IsZero() {
						t := ev.HighWaterMark.Time
						res.HighWaterMark = &t
					}
				}
			case *events.DeadLettered:
				if q, ok := original(ev).(*events.QueryRequested); ok && q.QueryID == res.QueryID && q.ContextNIP == res.NIP {
					res.State, res.Reason = "dead-lettered", describe(ev)
				}
			}
		case <-ticker.C:
			p.tick()
		case <-ctx.Done():
			waitErr = ctx.Err()
			break loop
		}
	}
	p.finish()
	if err := reportQuery(o.env.Stdout, res, f.output); err != nil {
		return err
	}
	switch {
	case waitErr != nil && ctx.Err() == nil:
		return waitErr
	case waitErr != nil:
		return &Error{Code: ExitTimeout, Err: fmt.Errorf("%s: query %s has not completed (ksefctl status %s follows it)",
			gaveUp(ctx, f.timeout), res.QueryID, res.QueryID)}
	case res.State == "dead-lettered":
		return &Error{Code: ExitFailed, Err: fmt.Errorf("query %s failed: %s", res.QueryID, res.Reason)}
	}
	return nil
}

// original decodes a dead letter's original event, or returns nil.
func original(dl *events.DeadLettered) events.Event {
	if len(dl.OriginalData) == 0 {
		return nil
	}
	ev, err := events.Decode(dl.OriginalData)
	if err != nil {
		return nil
	}
	return ev
}

func reportQuery(w io.Writer, res *queryResult, output string) error {
	slices.SortFunc(res.Invoices, func(a, b downloadedRef) int { return strings.Compare(a.KsefNumber, b.KsefNumber) })
	if res.Invoices == nil {
		res.Invoices = []downloadedRef{}
	}
	if output == "json" {
		return writeJSON(w, res)
	}
	fmt.Fprintf(w, "query %s of %s as %s: %s\n", res.QueryID, res.NIP, res.SubjectType, res.State)
	switch res.State {
	case "completed":
		fmt.Fprintf(w, "%d invoices in %d parts", res.InvoiceCount, len(res.Parts))
		if res.HighWaterMark != nil {
			fmt.Fprintf(w, ", high-water mark %s", showTime(*res.HighWaterMark))
		}
		fmt.Fprintln(w)
	case "dead-lettered":
		fmt.Fprintln(w, res.Reason)
	}
	if len(res.Invoices) > 0 {
		tw := newTable(w)
		fmt.Fprintln(tw, "KSEF NUMBER\tXML")
		for _, inv := range res.Invoices {
			fmt.Fprintf(tw, "%s\t%s/%s\n", inv.KsefNumber, inv.XML.Bucket, inv.XML.Key)
		}
		tw.Flush()
	}
	return nil
}

func runSync(ctx context.Context, o *options, args []string) error {
	c, _ := findCommand("sync")
	var f queryFlags
	fs := o.flagSet(c.name, func(fs *flag.FlagSet) { f.register(fs, true) })
	rest, err := o.parse(c, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(rest) > 0 {
		return usagef("sync: unexpected arguments %q", rest)
	}
	if f.status {
		return syncStatus(ctx, o, f)
	}
	req, err := f.request(o.env.Now(), "sync")
	if err != nil {
		return err
	}
	req.Incremental = true
	var from time.Time
	if f.from != "" {
		if from, err = parseTime(f.from, false); err != nil {
			return usagef("sync: --from %v", err)
		}
		if !from.Before(o.env.Now()) {
			return usagef("sync: --from %s is in the future", f.from)
		}
	}
	cn, err := o.connect(ctx)
	if err != nil {
		return err
	}
	defer cn.close()
	marks, err := readMarks(ctx, cn, req.ContextNIP, req.SubjectType)
	if err != nil {
		return err
	}
	switch {
	case len(marks) > 0 && !marks[0].HWM.IsZero():
		// The downloader starts at the mark whatever from says; from only has to be valid.
		if from.IsZero() {
			from = marks[0].HWM
		}
	case from.IsZero():
		return usagef("sync: no high-water mark yet for %s as %s: give --from for the first sync", req.ContextNIP, req.SubjectType)
	}
	req.From = events.At(from)
	return publishQuery(ctx, o, cn, req, f)
}

// markRow is one high-water mark.
type markRow struct {
	NIP         string     `json:"context_nip"`
	SubjectType string     `json:"subject_type"`
	HWM         time.Time  `json:"high_water_mark"`
	Recent      int        `json:"recent_invoices"`
	Last        *lastQuery `json:"last_query,omitempty"`
	Updated     time.Time  `json:"updated"`
}

// lastQuery is the query that moved a mark.
type lastQuery struct {
	QueryID       string     `json:"query_id"`
	InvoiceCount  int        `json:"invoice_count"`
	Continuations int        `json:"continuations"`
	HWM           *time.Time `json:"high_water_mark,omitempty"`
}

// marksBucket names the downloader's KV bucket.
func marksBucket(cfg natsx.Config) string { return names.KV(cfg.SubjectPrefix, names.Marks) }

// readMarks reads the marks of nip and subject ("" for all), keyed "<nip>.<subject type>".
func readMarks(ctx context.Context, cn *conn, nip, subject string) ([]markRow, error) {
	kv, err := cn.js.KeyValue(ctx, marksBucket(cn.cfg))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening the high-water marks (%s): %w", marksBucket(cn.cfg), err)
	}
	filter := ">"
	switch {
	case nip != "" && subject != "":
		filter = nip + "." + subject
	case nip != "":
		filter = nip + ".*"
	case subject != "":
		filter = "*." + subject
	}
	lister, err := kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("listing the high-water marks: %w", err)
	}
	var keys []string
	for k := range lister.Keys() { // closed after the last key; the lister stops itself
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var rows []markRow
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading the high-water mark %s: %w", k, err)
		}
		var mk downloader.Mark
		if err := json.Unmarshal(e.Value(), &mk); err != nil {
			return nil, fmt.Errorf("high-water mark %s: %w", k, err)
		}
		n, s, _ := strings.Cut(k, ".")
		row := markRow{NIP: n, SubjectType: s, HWM: mk.HWM, Recent: len(mk.Recent), Updated: e.Created()}
		if l := mk.Last; l != nil {
			row.Last = &lastQuery{QueryID: l.QueryID, InvoiceCount: l.InvoiceCount, Continuations: l.Continuations}
			if !l.HWM.IsZero() {
				row.Last.HWM = &l.HWM
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func syncStatus(ctx context.Context, o *options, f queryFlags) error {
	var subject string
	if f.subject != "" {
		var err error
		if subject, err = parseSubject("sync", f.subject); err != nil {
			return err
		}
	}
	if f.nip != "" && !ksef.IsNIP(f.nip) {
		return usagef("sync: --nip %q is not 10 digits", f.nip)
	}
	cn, err := o.connect(ctx)
	if err != nil {
		return err
	}
	defer cn.close()
	rows, err := readMarks(ctx, cn, f.nip, subject)
	if err != nil {
		return err
	}
	if f.output == "json" {
		if rows == nil {
			rows = []markRow{}
		}
		return writeJSON(o.env.Stdout, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(o.env.Stdout, "no high-water marks yet (ksefctl sync --nip NIP --subject S --from T starts one)")
		return nil
	}
	tw := newTable(o.env.Stdout)
	fmt.Fprintln(tw, "NIP\tSUBJECT\tHIGH-WATER MARK\tLAST QUERY\tINVOICES\tUPDATED")
	for _, r := range rows {
		last, n := "-", "-"
		if r.Last != nil {
			last, n = r.Last.QueryID, fmt.Sprint(r.Last.InvoiceCount)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.NIP, r.SubjectType, showTime(r.HWM), last, n, showTime(r.Updated))
	}
	return tw.Flush()
}

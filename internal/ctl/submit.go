package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"

	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

const submitHelp = `
Sends invoices to KSeF through the pipeline: each FA(3) XML is uploaded to the invoices bucket
(key erp-outbox/<nip>/<id>.xml) and announced by an invoice.submitted event; each .json file is a
KSeF generate request (structured invoice data) sent in the event for the pipeline to turn into
FA(3). A directory stands for its *.xml and *.json files.

Every file is read and parsed before anything is published: a file that is not an FA(3) invoice
(or not a valid generate request) is refused with the parser's error, and nothing is sent.

The invoice id (the ERP's own, used by "ksefctl status") is the file name without its extension,
or with --id-from number the invoice number (P_2). The KSeF context is the seller's NIP, or --nip.

--offline marks the invoices as issued in an offline mode (invoice.submitted's offline). The
sender sends them in batch sessions opened with offline: true (the only sessions the seed's API
can open as offline), and rejects them when batch sessions are off (KSEF_BATCH=false). Their
PDFs carry KOD I, the verification QR code, like every rendering: labelled with the KSeF number
once KSeF has it.

--wait follows every invoice to invoice.accepted or invoice.rejected (a progress bar on a
terminal, plain lines otherwise) and prints a summary. Exit code: 0 all accepted, 1 any rejected
or dead-lettered, 2 bad files or no connection, 3 timed out.`

// invoiceFile is one file to submit and what became of it.
type invoiceFile struct {
	Path      string `json:"file"`
	InvoiceID string `json:"invoice_id"`
	NIP       string `json:"context_nip"`
	Number    string `json:"invoice_number,omitempty"`
	EventID   string `json:"event_id,omitempty"`
	Seq       uint64 `json:"seq,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
	// State is submitted, sent, accepted, rejected or dead-lettered.
	State      string     `json:"state"`
	KsefNumber string     `json:"ksef_number,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	XML        *objectRef `json:"xml,omitempty"`

	kind string // "xml" or "json"
	data []byte
}

func (f *invoiceFile) settled() bool {
	return f.State == "accepted" || f.State == "rejected" || f.State == "dead-lettered"
}

type submitFlags struct {
	nip, id, idFrom, output string
	wait, inline, visual    bool
	offline, validate       bool
	timeout                 time.Duration
}

func runSubmit(ctx context.Context, o *options, args []string) error {
	c, _ := findCommand("submit")
	f := submitFlags{idFrom: "filename", timeout: 5 * time.Minute}
	fs := o.flagSet(c.name, func(fs *flag.FlagSet) {
		fs.StringVar(&f.nip, "nip", "", "context `NIP` (default: the seller's NIP in each invoice)")
		fs.StringVar(&f.id, "id", "", "invoice `id` (one file only; default from --id-from)")
		fs.StringVar(&f.idFrom, "id-from", "filename", "where the invoice id comes from: filename or number (P_2)")
		fs.BoolVar(&f.wait, "wait", false, "wait for every invoice's outcome")
		fs.DurationVar(&f.timeout, "timeout", f.timeout, "with --wait, give up after this `duration` (exit code 3)")
		fs.BoolVar(&f.inline, "inline", false, "send the XML inside the event (up to 256 KiB) instead of through storage")
		fs.BoolVar(&f.visual, "visualize", false, "ask for a PDF once KSeF accepts the invoice")
		fs.BoolVar(&f.offline, "offline", false, "the invoices were issued in offline mode: sent in batch sessions (see below)")
		fs.BoolVar(&f.validate, "validate", false, "validate against the FA(3) schema in KSEF_SCHEMA_DIR before sending")
		outputFlag(fs, &f.output)
	})
	paths, err := o.parse(c, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(paths) == 0 {
		return usagef("submit: name at least one invoice file or directory")
	}
	if f.idFrom != "filename" && f.idFrom != "number" {
		return usagef("submit: --id-from wants filename or number, got %q", f.idFrom)
	}
	if f.nip != "" && !ksef.IsNIP(f.nip) {
		return usagef("submit: --nip %q is not 10 digits", f.nip)
	}
	if err := o.loadConfig(); err != nil {
		return err
	}
	files, err := expandFiles(paths)
	if err != nil {
		return err
	}
	if f.id != "" && len(files) > 1 {
		return usagef("submit: --id names one invoice, but %d files were given", len(files))
	}
	invs, err := loadInvoices(ctx, o, files, f)
	if err != nil {
		return err
	}

	c2, err := o.connect(ctx)
	if err != nil {
		return err
	}
	defer c2.close()
	var store storage.Store
	var buckets storage.Buckets
	if !f.inline && slices.ContainsFunc(invs, func(i *invoiceFile) bool { return i.kind == "xml" }) {
		st, cfg, err := o.openStore()
		if err != nil {
			return err
		}
		store, buckets = st, cfg.Buckets
	}
	for i, inv := range invs {
		if err := publishInvoice(ctx, c2, store, buckets, inv, f); err != nil {
			if i > 0 {
				fmt.Fprintf(o.env.Stderr, "ksefctl: %d of %d invoices were submitted before the failure:\n", i, len(invs))
				reportSubmitted(o.env.Stderr, invs[:i], "table")
			}
			return err
		}
	}
	if !f.wait {
		return reportSubmitted(o.env.Stdout, invs, f.output)
	}
	return waitInvoices(ctx, o, c2, invs, f)
}

// expandFiles replaces directories by their *.xml and *.json files, in name order.
func expandFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, usagef("submit: %w", err)
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, usagef("submit: %w", err)
		}
		n := 0
		for _, e := range entries {
			ext := strings.ToLower(filepath.Ext(e.Name()))
			if !e.IsDir() && (ext == ".xml" || ext == ".json") {
				out = append(out, filepath.Join(p, e.Name()))
				n++
			}
		}
		if n == 0 {
			return nil, usagef("submit: directory %s holds no .xml or .json files", p)
		}
	}
	return out, nil
}

// loadInvoices reads and checks every file; any bad file refuses them all.
func loadInvoices(ctx context.Context, o *options, files []string, f submitFlags) ([]*invoiceFile, error) {
	var validator *fa3.Validator
	if f.validate {
		dir := o.getenv("KSEF_SCHEMA_DIR")
		if dir == "" {
			return nil, usagef("submit: --validate needs KSEF_SCHEMA_DIR (the Ministry's FA(3) schema directory)")
		}
		v, err := fa3.NewValidator(dir)
		if err != nil {
			return nil, usagef("submit: loading the FA(3) schema: %w", err)
		}
		defer v.Close()
		if !v.SchemaValidated() {
			return nil, usagef("submit: no FA(3) schema in KSEF_SCHEMA_DIR=%s", dir)
		}
		validator = v
	}
	var invs []*invoiceFile
	var errs []string
	seen := map[string]string{}
	for _, path := range files {
		inv, err := loadInvoice(ctx, path, f, validator)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		key := inv.NIP + "/" + inv.InvoiceID
		if prev, ok := seen[key]; ok {
			errs = append(errs, fmt.Sprintf("%s: invoice id %q of context %s is also %s", path, inv.InvoiceID, inv.NIP, prev))
			continue
		}
		seen[key] = path
		invs = append(invs, inv)
	}
	if len(errs) > 0 {
		return nil, usagef("submit: nothing was sent:\n  %s", strings.Join(errs, "\n  "))
	}
	return invs, nil
}

func loadInvoice(ctx context.Context, path string, f submitFlags, validator *fa3.Validator) (*invoiceFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	inv := &invoiceFile{Path: path, State: "submitted"}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		inv.kind = "json"
		var req ksefapi.KsefInvoiceGenerateRequest
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return nil, fmt.Errorf("%s: not a KSeF generate request: %v", path, err)
		}
		if _, err := fa3.Generate(fa3wire.Request(req)); err != nil {
			return nil, fmt.Errorf("%s: cannot be turned into FA(3): %v", path, err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, data); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		inv.data, inv.Number = compact.Bytes(), req.InvoiceNumber
		if req.Seller.Nip != nil {
			inv.NIP = *req.Seller.Nip
		}
	} else {
		inv.kind = "xml"
		doc, err := fa3.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("%s: not an FA(3) invoice: %v", path, err)
		}
		if validator != nil {
			if _, err := validator.Validate(ctx, data); err != nil {
				return nil, fmt.Errorf("%s: fails the FA(3) schema: %v", path, err)
			}
		}
		inv.data, inv.Number, inv.NIP = data, doc.InvoiceNumber(), doc.SellerNIP()
	}
	switch {
	case f.nip != "":
		inv.NIP = f.nip
	case inv.NIP == "":
		return nil, fmt.Errorf("%s: the invoice names no seller NIP; give --nip", path)
	case !ksef.IsNIP(inv.NIP):
		return nil, fmt.Errorf("%s: the seller NIP %q is not 10 digits; give --nip", path, inv.NIP)
	}
	switch {
	case f.id != "":
		inv.InvoiceID = f.id
	case f.idFrom == "number":
		inv.InvoiceID = inv.Number
		if inv.InvoiceID == "" {
			return nil, fmt.Errorf("%s: the invoice has no number (P_2) to use as its id", path)
		}
	default:
		inv.InvoiceID = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	if err := checkInvoiceID(inv.InvoiceID); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return inv, nil
}

func checkInvoiceID(id string) error {
	if id == "" || len(id) > events.MaxIDLen || !utf8.ValidString(id) {
		return fmt.Errorf("invoice id %q must be 1 to %d bytes of UTF-8", id, events.MaxIDLen)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("invoice id %q has a control character", id)
		}
	}
	return nil
}

// outboxKey is where submit uploads an invoice: by context, so sellers using the same invoice
// ids never overwrite each other's files.
func outboxKey(nip, id string) string {
	return storage.Layout{}.ERPOutbox(nip, id+".xml").Key
}

func publishInvoice(ctx context.Context, c *conn, store storage.Store, b storage.Buckets, inv *invoiceFile, f submitFlags) error {
	ev := &events.InvoiceSubmitted{Offline: f.offline, Visualize: f.visual}
	ev.InvoiceID, ev.ContextNIP = inv.InvoiceID, inv.NIP
	switch {
	case inv.kind == "json":
		ev.Generate = inv.data
	case f.inline:
		ev.InlineXML = inv.data
	default:
		key := outboxKey(inv.NIP, inv.InvoiceID)
		info, err := store.Put(ctx, b.Invoices, key, bytes.NewReader(inv.data), int64(len(inv.data)),
			storage.ObjectMeta{ContentType: "application/xml", Metadata: map[string]string{storage.MetaInvoiceID: inv.InvoiceID}})
		if err != nil {
			return storageErr(err, "uploading %s to %s/%s", inv.Path, b.Invoices, key)
		}
		ev.XML = &events.ObjectRef{Bucket: info.Bucket, Key: info.Key, SHA256: info.SHA256, Size: info.Size, ContentType: "application/xml"}
		inv.XML = jsonRef(ev.XML)
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ack, err := c.pub.PublishAck(pctx, ev, nil)
	if err != nil {
		var fe *events.FieldError
		if errors.As(err, &fe) {
			return usagef("%s: %v", inv.Path, err)
		}
		return fmt.Errorf("publishing %s: %w", inv.Path, err)
	}
	inv.EventID, inv.Seq, inv.Duplicate = ev.EventID, ack.Sequence, ack.Duplicate
	return nil
}

func reportSubmitted(w io.Writer, invs []*invoiceFile, output string) error {
	if output == "json" {
		return writeJSON(w, invs)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "FILE\tINVOICE ID\tNIP\tSTATE\tEVENT")
	for _, inv := range invs {
		state := inv.State
		if inv.Duplicate {
			state += " (already in the stream)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", inv.Path, inv.InvoiceID, inv.NIP, state, inv.EventID)
	}
	tw.Flush()
	fmt.Fprintln(w, "Follow them with: ksefctl status ID, or submit with --wait.")
	return nil
}

// waitInvoices follows the published invoices to their outcomes.
func waitInvoices(ctx context.Context, o *options, c *conn, invs []*invoiceFile, f submitFlags) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	byKey := map[string]*invoiceFile{}
	first := invs[0].Seq
	for _, inv := range invs {
		byKey[inv.NIP+"\x00"+inv.InvoiceID] = inv
		first = min(first, inv.Seq)
	}
	subjects := []string{c.subj.InvoiceSent(), c.subj.InvoiceAccepted(), c.subj.InvoiceRejected(),
		c.subj.DeadLetter(c.subj.InvoiceSubmitted()), c.subj.DeadLetter(c.subj.InvoiceSent())}
	stream, errc := c.watch(ctx, first, subjects)

	p := newProgress(o.env.Stderr, o.env.Interactive, o.env.Now, len(invs))
	var settled, sent, accepted, rejected, dead int
	status := func() string {
		s := fmt.Sprintf("sent %d, accepted %d", sent, accepted)
		if rejected > 0 {
			s += fmt.Sprintf(", rejected %d", rejected)
		}
		if dead > 0 {
			s += fmt.Sprintf(", dead-lettered %d", dead)
		}
		return s
	}
	p.update(0, status())
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	var waitErr error
loop:
	for settled < len(invs) {
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
			m := d.Event.Common()
			inv := byKey[m.ContextNIP+"\x00"+m.InvoiceID]
			if inv == nil || inv.settled() {
				continue
			}
			switch ev := d.Event.(type) {
			case *events.InvoiceSent:
				if inv.State == "submitted" {
					sent++
				}
				inv.State = "sent"
				if o.env.Interactive {
					p.update(settled, status()) // the bar counts them; a log gets a line each
				} else {
					p.printf("sent      %s  %s  %s", inv.InvoiceID, inv.NIP, describe(ev))
				}
				continue
			case *events.InvoiceAccepted:
				inv.State, inv.KsefNumber, inv.XML = "accepted", ev.KsefNumber, jsonRef(ev.XML)
				accepted++
			case *events.InvoiceRejected:
				inv.State, inv.Reason = "rejected", rejection(ev)
				rejected++
			case *events.DeadLettered:
				inv.State, inv.Reason = "dead-lettered", describe(ev)
				dead++
			default:
				continue
			}
			settled++
			p.printf("%-9s %s  %s  %s", inv.State, inv.InvoiceID, inv.NIP, orDash(inv.KsefNumber+inv.Reason))
			p.update(settled, status())
		case <-ticker.C:
			p.tick()
		case <-ctx.Done():
			waitErr = ctx.Err()
			break loop
		}
	}
	p.finish()
	if err := reportOutcomes(o.env.Stdout, invs, f.output); err != nil {
		return err
	}
	switch {
	case waitErr != nil && ctx.Err() == nil:
		return waitErr
	case waitErr != nil:
		return &Error{Code: ExitTimeout, Err: fmt.Errorf("%s: %d of %d invoices have no outcome yet (ksefctl status ID follows one)",
			gaveUp(ctx, f.timeout), len(invs)-settled, len(invs))}
	case rejected+dead > 0:
		return &Error{Code: ExitFailed, Err: fmt.Errorf("%d of %d invoices were not accepted", rejected+dead, len(invs))}
	}
	return nil
}

// gaveUp says why a wait ended early: its timeout, or an interrupt.
func gaveUp(ctx context.Context, timeout time.Duration) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "gave up after " + timeout.String()
	}
	return "interrupted"
}

func reportOutcomes(w io.Writer, invs []*invoiceFile, output string) error {
	if output == "json" {
		return writeJSON(w, invs)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "FILE\tINVOICE ID\tNIP\tOUTCOME\tKSEF NUMBER / REASON")
	counts := map[string]int{}
	for _, inv := range invs {
		counts[inv.State]++
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", inv.Path, inv.InvoiceID, inv.NIP, inv.State, orDash(inv.KsefNumber+inv.Reason))
	}
	tw.Flush()
	var parts []string
	for _, s := range []string{"accepted", "rejected", "dead-lettered", "sent", "submitted"} {
		if n := counts[s]; n > 0 {
			label := s
			if s == "sent" || s == "submitted" {
				label += " (no outcome yet)"
			}
			parts = append(parts, fmt.Sprintf("%d %s", n, label))
		}
	}
	fmt.Fprintf(w, "%d invoices: %s\n", len(invs), strings.Join(parts, ", "))
	return nil
}

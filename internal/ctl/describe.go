package ctl

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// timeLayout shows times in UTC to the millisecond: the audit view sorts and compares them.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func showTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(timeLayout)
}

func showRef(r *events.ObjectRef) string {
	if r == nil {
		return "-"
	}
	return r.Bucket + "/" + r.Key
}

// objectRef is an events.ObjectRef in JSON output, with the events' field names.
type objectRef struct {
	Bucket      string `json:"bucket"`
	Key         string `json:"key"`
	SHA256      string `json:"sha256,omitempty"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type,omitempty"`
}

func jsonRef(r *events.ObjectRef) *objectRef {
	if r == nil {
		return nil
	}
	o := objectRef(*r)
	return &o
}

func jsonRefs(rs []events.ObjectRef) []objectRef {
	out := make([]objectRef, len(rs))
	for i, r := range rs {
		out[i] = objectRef(r)
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// warned counts an event's warnings for its one-line description.
func warned(w []string) string {
	switch len(w) {
	case 0:
		return ""
	case 1:
		return ", 1 warning"
	}
	return fmt.Sprintf(", %d warnings", len(w))
}

// describe returns the key fields of an event in one line.
func describe(e events.Event) string {
	switch ev := e.(type) {
	case *events.InvoiceSubmitted:
		var s string
		switch {
		case ev.XML != nil:
			s = "xml " + showRef(ev.XML)
		case ev.InlineXML != nil:
			s = fmt.Sprintf("inline xml, %d bytes", len(ev.InlineXML))
		default:
			s = fmt.Sprintf("structured data to generate, %d bytes", len(ev.Generate))
		}
		if ev.Offline {
			s += ", offline"
		}
		if ev.Visualize {
			s += ", visualize"
		}
		if ev.Resubmission > 0 {
			s += fmt.Sprintf(", resubmission %d", ev.Resubmission)
		}
		return s
	case *events.InvoiceSent:
		s := fmt.Sprintf("%s session %s", ev.Mode, ev.SessionID)
		if ev.KsefInvoiceID != "" {
			s += ", reference " + ev.KsefInvoiceID
		}
		if ev.InvoiceNumber != "" {
			s += ", number " + ev.InvoiceNumber
		}
		return s + warned(ev.Warnings)
	case *events.InvoiceAccepted:
		s := "KSeF number " + ev.KsefNumber + ", acquired " + showTime(ev.AcquisitionDate.Time)
		if ev.DuplicateOfEarlierSend {
			s += " (duplicate of our earlier send)"
		}
		return s + warned(ev.Warnings)
	case *events.InvoiceRejected:
		return rejection(ev)
	case *events.InvoiceDownloaded:
		return fmt.Sprintf("%s by query %s as %s -> %s", ev.KsefNumber, ev.QueryID, ev.SubjectType, showRef(ev.XML))
	case *events.VisualizeRequested:
		return fmt.Sprintf("%s %s of %s", ev.Format, ev.Language, orDash(ev.KsefNumber))
	case *events.InvoiceVisualized:
		return fmt.Sprintf("%s %s -> %s", ev.Format, ev.Language, showRef(ev.Document))
	case *events.SessionClosed:
		return fmt.Sprintf("%s session %s closed, %d invoices", ev.Mode, ev.SessionID, ev.InvoiceCount)
	case *events.SessionUpoStored:
		return fmt.Sprintf("UPO of session %s for %d invoices -> %s", ev.SessionID, len(ev.KsefNumbers), showRef(ev.UPO))
	case *events.QueryRequested:
		s := fmt.Sprintf("query %s as %s from %s", ev.QueryID, ev.SubjectType, showTime(ev.From.Time))
		if !ev.To.IsZero() {
			s += " to " + showTime(ev.To.Time)
		}
		if ev.Incremental {
			s += ", incremental"
		}
		return s
	case *events.QueryCompleted:
		s := fmt.Sprintf("query %s: %d invoices in %d parts", ev.QueryID, ev.InvoiceCount, len(ev.Parts))
		if ev.TruncatedContinuations > 0 {
			s += fmt.Sprintf(", %d continuations", ev.TruncatedContinuations)
		}
		if !ev.HighWaterMark.IsZero() {
			s += ", high-water mark " + showTime(ev.HighWaterMark.Time)
		}
		return s
	case *events.DeadLettered:
		return fmt.Sprintf("%s by %s after %d deliveries: %s", ev.ErrorKind, ev.Stage, ev.Deliveries, oneLine(ev.Reason))
	}
	return ""
}

func rejection(ev *events.InvoiceRejected) string {
	s := fmt.Sprintf("%s stage, code %d: %s", ev.Stage, ev.Code, oneLine(ev.Description))
	if len(ev.Details) > 0 {
		s += " (" + oneLine(strings.Join(ev.Details, "; ")) + ")"
	}
	if ev.OriginalKsefNumber != "" {
		s += ", original " + ev.OriginalKsefNumber
	}
	return s
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// ids returns the context NIP and the event's main identifier (invoice id, query id, ...).
func ids(e events.Event) (nip, id string) {
	m := e.Common()
	nip, id = m.ContextNIP, m.InvoiceID
	switch ev := e.(type) {
	case *events.QueryRequested:
		id = ev.QueryID
	case *events.QueryCompleted:
		id = ev.QueryID
	case *events.InvoiceDownloaded:
		if id == "" {
			id = ev.KsefNumber
		}
	case *events.SessionClosed:
		id = ev.SessionID
	case *events.SessionUpoStored:
		id = ev.SessionID
	case *events.InvoiceVisualized:
		if id == "" {
			id = ev.KsefNumber
		}
	}
	return nip, id
}

// eventLine is the one-line audit form of a stored message.
func eventLine(subj events.Subjects, d natsx.Delivered) string {
	bare, _ := subj.Bare(d.Subject)
	if d.Err != nil {
		return fmt.Sprintf("%s  #%d  %s  undecodable: %s", showTime(d.Time), d.Seq, bare, oneLine(d.Err.Error()))
	}
	nip, id := ids(d.Event)
	return fmt.Sprintf("%s  #%d  %s  %s  %s  %s", showTime(d.Time), d.Seq, bare, orDash(nip), orDash(id), describe(d.Event))
}

// eventJSON is the JSON form of a stored message: its envelope and the event as any msgpack
// reader sees it (byte fields in base64).
type eventJSON struct {
	Seq     uint64         `json:"seq"`
	Time    time.Time      `json:"time"`
	Subject string         `json:"subject"`
	Event   map[string]any `json:"event,omitempty"`
	Error   string         `json:"error,omitempty"`
}

func toJSON(d natsx.Delivered) eventJSON {
	j := eventJSON{Seq: d.Seq, Time: d.Time.UTC(), Subject: d.Subject}
	if d.Err != nil {
		j.Error = d.Err.Error()
	}
	var m map[string]any
	if err := msgpack.Unmarshal(d.Data, &m); err == nil {
		j.Event = m
	} else if j.Error == "" {
		j.Error = err.Error()
	}
	return j
}

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}

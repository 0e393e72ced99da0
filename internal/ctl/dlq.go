package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

const dlqHelp = `
Dead letters are messages a worker gave up on, published on dlq.<original subject> with the
original message, its headers, the reason and the kind of failure.

  ksefctl dlq list                 every dead letter (--since, --subject, --kind, --stage filter)
  ksefctl dlq show SEQ             one dead letter and its original event in full
  ksefctl dlq replay SEQ...        publish the original message again on its subject, once the
  ksefctl dlq replay --all         cause is fixed; with --all every dead letter the filters select

SEQ is the dead letter's stream sequence, as list shows it. A replay carries the original body
and headers with a new Nats-Msg-Id derived from the dead letter (<original id>:replay-<SEQ>), so
JetStream does not drop it as a duplicate of the original, while replaying the same dead letter
twice within the duplicate window is dropped (reported as "already replayed").`

// deadLetter is a stored dead letter.
type deadLetter struct {
	d  natsx.Delivered
	dl *events.DeadLettered
}

type dlqFlags struct {
	since, subject, kind, stage, output string
	all, dryRun                         bool
}

func runDLQ(ctx context.Context, o *options, args []string) error {
	c, _ := findCommand("dlq")
	var f dlqFlags
	fs := o.flagSet(c.name, func(fs *flag.FlagSet) {
		fs.StringVar(&f.since, "since", "", "only dead letters from this `time` or duration ago")
		fs.StringVar(&f.subject, "subject", "", "only dead letters of this original `subject` (without the prefix)")
		fs.StringVar(&f.kind, "kind", "", "only this error `kind` (malformed, unknown_version, invalid, permanent, max_deliver, panic)")
		fs.StringVar(&f.stage, "stage", "", "only dead letters of this `worker`")
		fs.BoolVar(&f.all, "all", false, "replay: every dead letter the filters select")
		fs.BoolVar(&f.dryRun, "dry-run", false, "replay: say what would be replayed, publish nothing")
		outputFlag(fs, &f.output)
	})
	rest, err := o.parse(c, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(rest) == 0 {
		return usagef("dlq: say list, show SEQ or replay SEQ...|--all")
	}
	action, rest := rest[0], rest[1:]
	var seqs []uint64
	for _, a := range rest {
		n, err := strconv.ParseUint(strings.TrimPrefix(a, "#"), 10, 64)
		if err != nil || n == 0 {
			return usagef("dlq %s: %q is not a stream sequence", action, a)
		}
		seqs = append(seqs, n)
	}
	var since time.Time
	if f.since != "" {
		if since, err = parseSince(f.since, o.env.Now()); err != nil {
			return usagef("dlq: --since %v", err)
		}
	}
	switch action {
	case "list":
		if len(seqs) > 0 {
			return usagef("dlq list takes no arguments")
		}
	case "show":
		if len(seqs) != 1 {
			return usagef("dlq show: name one dead letter's SEQ")
		}
	case "replay":
		if len(seqs) == 0 && !f.all || len(seqs) > 0 && f.all {
			return usagef("dlq replay: name dead letters by SEQ, or --all")
		}
	default:
		return usagef("dlq: unknown action %q: want list, show or replay", action)
	}
	cn, err := o.connect(ctx)
	if err != nil {
		return err
	}
	defer cn.close()
	switch action {
	case "list":
		dls, err := listDeadLetters(ctx, cn, since, f)
		if err != nil {
			return err
		}
		return printDeadLetters(o, cn, dls, f.output)
	case "show":
		dl, err := getDeadLetter(ctx, cn, seqs[0])
		if err != nil {
			return err
		}
		return showDeadLetter(ctx, o, cn, dl, f.output)
	}
	var dls []deadLetter
	if f.all {
		if dls, err = listDeadLetters(ctx, cn, since, f); err != nil {
			return err
		}
		if len(dls) == 0 {
			fmt.Fprintln(o.env.Stdout, "no dead letters to replay")
			return nil
		}
	}
	for _, s := range seqs {
		dl, err := getDeadLetter(ctx, cn, s)
		if err != nil {
			return err
		}
		dls = append(dls, dl)
	}
	var failures int
	for _, dl := range dls {
		if err := replay(ctx, o, cn, dl, f.dryRun); err != nil {
			fmt.Fprintf(o.env.Stderr, "ksefctl: dead letter #%d: %v\n", dl.d.Seq, err)
			failures++
		}
	}
	if failures > 0 {
		return failedf("%d of %d dead letters were not replayed", failures, len(dls))
	}
	return nil
}

func (f dlqFlags) keep(dl *events.DeadLettered, subj events.Subjects) bool {
	bare, _ := subj.Bare(dl.OriginalSubject)
	return (f.kind == "" || string(dl.ErrorKind) == f.kind) && (f.stage == "" || dl.Stage == f.stage) &&
		(f.subject == "" || bare == f.subject)
}

func listDeadLetters(ctx context.Context, cn *conn, since time.Time, f dlqFlags) ([]deadLetter, error) {
	var out []deadLetter
	err := cn.read(ctx, natsx.FollowOptions{Subjects: []string{cn.subj.Subject("dlq.>")}, Since: since},
		func(d natsx.Delivered) error {
			dl, ok := d.Event.(*events.DeadLettered)
			if ok && f.keep(dl, cn.subj) {
				out = append(out, deadLetter{d, dl})
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("reading the dead letters: %w", err)
	}
	return out, nil
}

func getDeadLetter(ctx context.Context, cn *conn, seq uint64) (deadLetter, error) {
	msg, err := cn.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return deadLetter{}, failedf("no message at stream sequence %d (ksefctl dlq list shows the dead letters)", seq)
	}
	if err != nil {
		return deadLetter{}, fmt.Errorf("reading stream message %d: %w", seq, err)
	}
	bare, _ := cn.subj.Bare(msg.Subject)
	if !strings.HasPrefix(bare, "dlq.") {
		return deadLetter{}, failedf("stream message %d is a %s, not a dead letter", seq, bare)
	}
	ev, err := cn.cfg.Codec().Decode(msg.Data)
	if err != nil {
		return deadLetter{}, failedf("dead letter %d cannot be decoded: %v", seq, err)
	}
	dl, ok := ev.(*events.DeadLettered)
	if !ok {
		return deadLetter{}, failedf("stream message %d is a %s, not a dead letter", seq, ev.EventType())
	}
	return deadLetter{natsx.Delivered{Subject: msg.Subject, Seq: msg.Sequence, Time: msg.Time, Data: msg.Data, Event: dl}, dl}, nil
}

type deadLetterRow struct {
	Seq             uint64    `json:"seq"`
	Time            time.Time `json:"time"`
	OriginalSubject string    `json:"original_subject"`
	OriginalSeq     uint64    `json:"original_seq,omitempty"`
	OriginalMsgID   string    `json:"original_msg_id,omitempty"`
	Stage           string    `json:"stage"`
	Kind            string    `json:"error_kind"`
	Deliveries      int       `json:"deliveries"`
	NIP             string    `json:"context_nip,omitempty"`
	InvoiceID       string    `json:"invoice_id,omitempty"`
	Reason          string    `json:"reason"`
}

func printDeadLetters(o *options, cn *conn, dls []deadLetter, output string) error {
	rows := make([]deadLetterRow, 0, len(dls))
	for _, d := range dls {
		bare, _ := cn.subj.Bare(d.dl.OriginalSubject)
		rows = append(rows, deadLetterRow{Seq: d.d.Seq, Time: d.d.Time.UTC(), OriginalSubject: bare, OriginalSeq: d.dl.OriginalSeq, OriginalMsgID: d.dl.OriginalMsgID,
			Stage: d.dl.Stage, Kind: string(d.dl.ErrorKind), Deliveries: d.dl.Deliveries, NIP: d.dl.ContextNIP,
			InvoiceID: d.dl.InvoiceID, Reason: d.dl.Reason})
	}
	w := o.env.Stdout
	if output == "json" {
		return writeJSON(w, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(w, "no dead letters")
		return nil
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "SEQ\tTIME\tORIGINAL SUBJECT\tSTAGE\tKIND\tNIP\tINVOICE ID\tREASON")
	for _, r := range rows {
		reason := oneLine(r.Reason)
		if len(reason) > 100 {
			reason = reason[:97] + "..."
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, showTime(r.Time), r.OriginalSubject, r.Stage, r.Kind,
			orDash(r.NIP), orDash(r.InvoiceID), reason)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d dead letters; ksefctl dlq show SEQ shows one, ksefctl dlq replay SEQ publishes it again\n", len(rows))
	return nil
}

// originalMessage returns the original body and headers of a dead letter: from the dead letter,
// or, when it was too large to carry them, from the stream while the original is still there.
func originalMessage(ctx context.Context, cn *conn, d deadLetter) ([]byte, nats.Header, error) {
	if len(d.dl.OriginalData) > 0 {
		return d.dl.OriginalData, nats.Header(d.dl.OriginalHeaders), nil
	}
	if d.dl.OriginalSeq == 0 {
		return nil, nil, errors.New("it carries no original message and no original sequence")
	}
	msg, err := cn.stream.GetMsg(ctx, d.dl.OriginalSeq)
	if err != nil {
		return nil, nil, fmt.Errorf("it carries no original message, and the original at sequence %d cannot be read: %w", d.dl.OriginalSeq, err)
	}
	if msg.Subject != d.dl.OriginalSubject {
		return nil, nil, fmt.Errorf("it carries no original message, and sequence %d is now a %s", d.dl.OriginalSeq, msg.Subject)
	}
	return msg.Data, msg.Header, nil
}

func showDeadLetter(ctx context.Context, o *options, cn *conn, d deadLetter, output string) error {
	dl := d.dl
	data, hdr, origErr := originalMessage(ctx, cn, d)
	var orig events.Event
	var decodeErr error
	if origErr == nil {
		orig, decodeErr = cn.cfg.Codec().Decode(data)
	}
	w := o.env.Stdout
	if output == "json" {
		out := struct {
			eventJSON
			Original      *eventJSON `json:"original,omitempty"`
			OriginalError string     `json:"original_error,omitempty"`
		}{eventJSON: toJSON(d.d)}
		if origErr != nil {
			out.OriginalError = origErr.Error()
		} else {
			j := toJSON(natsx.Delivered{Subject: dl.OriginalSubject, Seq: dl.OriginalSeq, Data: data, Err: decodeErr})
			out.Original = &j
		}
		return writeJSON(w, out)
	}
	bare, _ := cn.subj.Bare(dl.OriginalSubject)
	tw := newTable(w)
	fmt.Fprintf(tw, "dead letter:\t#%d at %s on %s\n", d.d.Seq, showTime(d.d.Time), d.d.Subject)
	fmt.Fprintf(tw, "original:\t%s #%d, Nats-Msg-Id %s\n", bare, dl.OriginalSeq, orDash(dl.OriginalMsgID))
	fmt.Fprintf(tw, "worker:\t%s\n", dl.Stage)
	fmt.Fprintf(tw, "kind:\t%s\n", dl.ErrorKind)
	fmt.Fprintf(tw, "deliveries:\t%d (first failed %s)\n", dl.Deliveries, showTime(dl.FirstFailedAt.Time))
	fmt.Fprintf(tw, "reason:\t%s\n", oneLine(dl.Reason))
	if dl.InvoiceID != "" || dl.ContextNIP != "" {
		fmt.Fprintf(tw, "invoice:\t%s of context %s\n", orDash(dl.InvoiceID), orDash(dl.ContextNIP))
	}
	fmt.Fprintf(tw, "correlation:\t%s\n", orDash(dl.CorrelationID))
	for k, vs := range hdr {
		fmt.Fprintf(tw, "header:\t%s: %s\n", k, strings.Join(vs, ", "))
	}
	switch {
	case origErr != nil:
		fmt.Fprintf(tw, "original event:\tunavailable: %v\n", origErr)
	case decodeErr != nil:
		fmt.Fprintf(tw, "original event:\tundecodable (%v): %d bytes, starting %q\n", decodeErr, len(data), prefix(data, 80))
	default:
		fmt.Fprintf(tw, "original event:\t%s %s\n", orig.EventType(), describe(orig))
	}
	tw.Flush()
	fmt.Fprintf(w, "Replay it once the cause is fixed: ksefctl dlq replay %d\n", d.d.Seq)
	return nil
}

func prefix(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// replayMsgID is the replay's Nats-Msg-Id: new (not the original's, which JetStream would
// drop as a duplicate inside its window) and derived from the dead letter, so a second replay of
// the same dead letter is dropped instead.
func replayMsgID(dl *events.DeadLettered, dlqSeq uint64) string {
	id := dl.OriginalMsgID
	if id == "" {
		id = "seq-" + strconv.FormatUint(dl.OriginalSeq, 10)
	}
	return id + ":replay-" + strconv.FormatUint(dlqSeq, 10)
}

// HeaderReplayOf names the dead letter (its stream sequence) a replayed message comes from.
const HeaderReplayOf = "Ksef-Replay-Of"

func replay(ctx context.Context, o *options, cn *conn, d deadLetter, dryRun bool) error {
	dl := d.dl
	bare, ok := cn.subj.Bare(dl.OriginalSubject)
	if !ok || strings.HasPrefix(bare, "dlq.") {
		return fmt.Errorf("its original subject %s is not a subject of this pipeline", dl.OriginalSubject)
	}
	data, hdr, err := originalMessage(ctx, cn, d)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: dl.OriginalSubject, Data: data, Header: nats.Header{}}
	for k, vs := range hdr {
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			continue // JetStream's own (message id, expectations): never carried over
		}
		msg.Header[k] = append([]string(nil), vs...)
	}
	id := replayMsgID(dl, d.d.Seq)
	msg.Header.Set(jetstream.MsgIDHeader, id)
	msg.Header.Set(HeaderReplayOf, strconv.FormatUint(d.d.Seq, 10))
	if dryRun {
		fmt.Fprintf(o.env.Stdout, "would replay #%d on %s as %s (%d bytes)\n", d.d.Seq, bare, id, len(data))
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ack, err := cn.js.PublishMsg(pctx, msg, jetstream.WithExpectStream(natsx.StreamName(cn.cfg.SubjectPrefix)))
	if err != nil {
		return fmt.Errorf("publishing on %s: %w", dl.OriginalSubject, err)
	}
	if ack.Duplicate {
		fmt.Fprintf(o.env.Stdout, "#%d was already replayed as %s #%d (inside the duplicate window)\n", d.d.Seq, bare, ack.Sequence)
		return nil
	}
	fmt.Fprintf(o.env.Stdout, "replayed #%d on %s as #%d (Nats-Msg-Id %s)\n", d.d.Seq, bare, ack.Sequence, id)
	return nil
}

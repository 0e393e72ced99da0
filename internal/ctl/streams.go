package ctl

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
)

const streamsHelp = `
The operator's first look: the pipeline's stream (messages, bytes, age, messages per subject,
dead letters), the workers' durable consumers (sender, poller, downloader, visualizer) with the
messages waiting for them, delivered but not acknowledged, redelivered, and pulls waiting, and
the pipeline's KV buckets (invoice state, request limits, high-water marks, failure counts).
A worker without a consumer has never run against this stream. --all shows every KSEF* stream
(every subject prefix on this server).`

type streamReport struct {
	Name            string            `json:"name"`
	Subjects        []string          `json:"subjects"`
	Messages        uint64            `json:"messages"`
	Bytes           uint64            `json:"bytes"`
	FirstTime       time.Time         `json:"first_time"`
	LastTime        time.Time         `json:"last_time"`
	MaxAge          time.Duration     `json:"max_age_ns"`
	DuplicateWindow time.Duration     `json:"duplicate_window_ns"`
	Replicas        int               `json:"replicas"`
	PerSubject      map[string]uint64 `json:"per_subject"`
	DeadLetters     uint64            `json:"dead_letters"`
	Consumers       []consumerReport  `json:"consumers"`
	// Readers counts ephemeral consumers: audit readers such as ksefctl's, which the server
	// removes once they are idle.
	Readers        int            `json:"ephemeral_readers"`
	MissingWorkers []string       `json:"missing_workers,omitempty"`
	Buckets        []bucketReport `json:"kv_buckets"`
}

type consumerReport struct {
	Name          string     `json:"name"`
	Filter        []string   `json:"filter_subjects"`
	Pending       uint64     `json:"pending"`
	AckPending    int        `json:"ack_pending"`
	Redelivered   int        `json:"redelivered"`
	Waiting       int        `json:"waiting"`
	DeliveredSeq  uint64     `json:"delivered_stream_seq"`
	AckFloorSeq   uint64     `json:"ack_floor_stream_seq"`
	LastDelivered *time.Time `json:"last_delivered,omitempty"`
	AckWait       string     `json:"ack_wait"`
}

type bucketReport struct {
	Name   string `json:"name"`
	Values uint64 `json:"values"`
	Bytes  uint64 `json:"bytes"`
	TTL    string `json:"ttl"`
}

func runStreams(ctx context.Context, o *options, args []string) error {
	c, _ := findCommand("streams")
	var all bool
	var output string
	fs := o.flagSet(c.name, func(fs *flag.FlagSet) {
		fs.BoolVar(&all, "all", false, "every KSEF* stream on the server, not only this prefix's")
		outputFlag(fs, &output)
	})
	rest, err := o.parse(c, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(rest) > 0 {
		return usagef("streams: unexpected arguments %q", rest)
	}
	cn, err := o.connect(ctx)
	if err != nil {
		return err
	}
	defer cn.close()
	names := []string{natsx.StreamName(cn.cfg.SubjectPrefix)}
	if all {
		names = nil
		lister := cn.js.StreamNames(ctx)
		for n := range lister.Name() {
			// The pipelines' streams; not their ERP mirrors (natsx.ERPStreamName: a dash).
			if (n == "KSEF" || strings.HasPrefix(n, "KSEF_")) && !strings.Contains(n, "-") {
				names = append(names, n)
			}
		}
		if err := lister.Err(); err != nil {
			return fmt.Errorf("listing streams: %w", err)
		}
		slices.Sort(names)
	}
	var kvNames []string
	kl := cn.js.KeyValueStoreNames(ctx)
	for n := range kl.Name() {
		kvNames = append(kvNames, strings.TrimPrefix(n, "KV_"))
	}
	if err := kl.Error(); err != nil {
		return fmt.Errorf("listing KV buckets: %w", err)
	}
	var reports []streamReport
	for _, name := range names {
		r, err := reportStream(ctx, cn, name, kvNames)
		if err != nil {
			return err
		}
		reports = append(reports, r)
	}
	if output == "json" {
		return writeJSON(o.env.Stdout, reports)
	}
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(o.env.Stdout)
		}
		printStream(o.env.Stdout, r, o.env.Now())
	}
	return nil
}

func reportStream(ctx context.Context, cn *conn, name string, kvNames []string) (streamReport, error) {
	s, err := cn.js.Stream(ctx, name)
	if err != nil {
		return streamReport{}, fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		return streamReport{}, fmt.Errorf("stream %s: %w", name, err)
	}
	r := streamReport{Name: name, Subjects: info.Config.Subjects, Messages: info.State.Msgs, Bytes: info.State.Bytes,
		FirstTime: info.State.FirstTime, LastTime: info.State.LastTime, MaxAge: info.Config.MaxAge,
		DuplicateWindow: info.Config.Duplicates, Replicas: info.Config.Replicas, PerSubject: info.State.Subjects}
	if r.PerSubject == nil {
		r.PerSubject = map[string]uint64{}
	}
	for subj, n := range r.PerSubject {
		if tok := strings.Split(subj, "."); slices.Contains(tok, "dlq") {
			r.DeadLetters += n
		}
	}
	lister := s.ListConsumers(ctx)
	for ci := range lister.Info() {
		if ci.Config.Durable == "" {
			r.Readers++
			continue
		}
		filter := ci.Config.FilterSubjects
		if ci.Config.FilterSubject != "" {
			filter = append([]string{ci.Config.FilterSubject}, filter...)
		}
		cr := consumerReport{Name: ci.Name, Filter: filter, Pending: ci.NumPending, AckPending: ci.NumAckPending,
			Redelivered: ci.NumRedelivered, Waiting: ci.NumWaiting, DeliveredSeq: ci.Delivered.Stream,
			AckFloorSeq: ci.AckFloor.Stream, LastDelivered: ci.Delivered.Last, AckWait: ci.Config.AckWait.String()}
		r.Consumers = append(r.Consumers, cr)
	}
	if err := lister.Err(); err != nil {
		return r, fmt.Errorf("listing the consumers of %s: %w", name, err)
	}
	slices.SortFunc(r.Consumers, func(a, b consumerReport) int { return strings.Compare(a.Name, b.Name) })
	for _, w := range pipeline.Workers() {
		if !slices.ContainsFunc(r.Consumers, func(c consumerReport) bool { return c.Name == w }) {
			r.MissingWorkers = append(r.MissingWorkers, w)
		}
	}
	// The pipeline's buckets are named after its stream: <stream>_STATE, _LIMITS, _MARKS,
	// _failures. Stream names of other prefixes have an underscore after KSEF_, so a suffix
	// with one belongs to them.
	for _, kvName := range kvNames {
		rest, ok := strings.CutPrefix(kvName, name+"_")
		if !ok || rest == "" || strings.Contains(rest, "_") {
			continue
		}
		kv, err := cn.js.KeyValue(ctx, kvName)
		if err != nil {
			continue
		}
		st, err := kv.Status(ctx)
		if err != nil {
			continue
		}
		r.Buckets = append(r.Buckets, bucketReport{Name: kvName, Values: st.Values(), Bytes: st.Bytes(), TTL: st.TTL().String()})
	}
	slices.SortFunc(r.Buckets, func(a, b bucketReport) int { return strings.Compare(a.Name, b.Name) })
	return r, nil
}

func printStream(w io.Writer, r streamReport, now time.Time) {
	fmt.Fprintf(w, "stream %s: %d messages, %s, subjects %s\n", r.Name, r.Messages, humanBytes(r.Bytes), strings.Join(r.Subjects, " "))
	fmt.Fprintf(w, "  first %s, last %s (%s); kept %s, duplicate window %s, %d replica(s)\n",
		showTime(r.FirstTime), showTime(r.LastTime), ago(now, r.LastTime), r.MaxAge, r.DuplicateWindow, r.Replicas)
	if r.DeadLetters > 0 {
		fmt.Fprintf(w, "  DEAD LETTERS: %d (ksefctl dlq list)\n", r.DeadLetters)
	} else {
		fmt.Fprintln(w, "  no dead letters")
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "\nSUBJECT\tMESSAGES")
	for _, s := range slices.Sorted(maps.Keys(r.PerSubject)) {
		fmt.Fprintf(tw, "%s\t%d\n", s, r.PerSubject[s])
	}
	tw.Flush()
	tw = newTable(w)
	fmt.Fprintln(tw, "\nCONSUMER\tSUBJECTS\tPENDING\tACK PENDING\tREDELIVERED\tWAITING PULLS\tDELIVERED\tACK FLOOR\tLAST DELIVERY")
	for _, c := range r.Consumers {
		last := "never"
		if c.LastDelivered != nil {
			last = ago(now, *c.LastDelivered)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t#%d\t#%d\t%s\n", c.Name, strings.Join(c.Filter, " "), c.Pending, c.AckPending,
			c.Redelivered, c.Waiting, c.DeliveredSeq, c.AckFloorSeq, last)
	}
	tw.Flush()
	if r.Readers > 0 {
		fmt.Fprintf(w, "and %d ephemeral readers (audit tools such as ksefctl; removed by the server when idle)\n", r.Readers)
	}
	if len(r.MissingWorkers) > 0 {
		fmt.Fprintf(w, "no consumer yet (the worker has never run against this stream): %s\n", strings.Join(r.MissingWorkers, ", "))
	}
	if len(r.Buckets) > 0 {
		tw = newTable(w)
		fmt.Fprintln(tw, "\nKV BUCKET\tVALUES\tBYTES\tTTL")
		for _, b := range r.Buckets {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", b.Name, b.Values, humanBytes(b.Bytes), b.TTL)
		}
		tw.Flush()
	}
}

package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
)

const eventsHelp = `
The audit view: every event of the stream in order, one line each (time, stream sequence,
subject, context NIP, id, key fields), or with --output json one JSON object per line holding
the event as any msgpack reader sees it. --follow keeps reading new events until interrupted
(from now, or from --since).

Subjects are given without the prefix and may use NATS wildcards: --subject invoice.accepted
--subject 'dlq.>'.`

// stringsFlag collects a repeatable flag.
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}

func runEvents(ctx context.Context, o *options, args []string) error {
	c, _ := findCommand("events")
	var (
		subjects             stringsFlag
		follow               bool
		since, nip, id, outp string
	)
	fs := o.flagSet(c.name, func(fs *flag.FlagSet) {
		fs.BoolVar(&follow, "follow", false, "keep reading new events until interrupted")
		fs.Var(&subjects, "subject", "only this `subject` (without the prefix; wildcards allowed; repeatable)")
		fs.StringVar(&since, "since", "", "start at this `time` or duration ago (10m, 2h, 7d, RFC 3339, YYYY-MM-DD)")
		fs.StringVar(&nip, "nip", "", "only events of this context `NIP`")
		fs.StringVar(&id, "id", "", "only events of this invoice or query `id`")
		outputFlag(fs, &outp)
	})
	rest, err := o.parse(c, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(rest) > 0 {
		return usagef("events: unexpected arguments %q (subjects go with --subject)", rest)
	}
	var from time.Time
	switch {
	case since != "":
		if from, err = parseSince(since, o.env.Now()); err != nil {
			return usagef("events: --since %v", err)
		}
	case follow:
		from = o.env.Now() // a live view starts now, not at the stream's first event
	}
	for _, s := range subjects {
		if err := checkSubject(s); err != nil {
			return usagef("events: --subject %v", err)
		}
	}
	cn, err := o.connect(ctx)
	if err != nil {
		return err
	}
	defer cn.close()
	var full []string
	for _, s := range subjects {
		full = append(full, cn.subj.Subject(s))
	}
	w := o.env.Stdout
	err = cn.read(ctx, natsx.FollowOptions{Subjects: full, Since: from, Live: follow}, func(d natsx.Delivered) error {
		if nip != "" || id != "" {
			if d.Err != nil {
				return nil
			}
			n, i := ids(d.Event)
			if nip != "" && n != nip || id != "" && i != id && d.Event.Common().InvoiceID != id {
				return nil
			}
		}
		if outp == "json" {
			return writeJSONLine(w, toJSON(d))
		}
		_, err := fmt.Fprintln(w, eventLine(cn.subj, d))
		return err
	})
	if follow && errors.Is(err, context.Canceled) {
		return nil // interrupted: the normal end of --follow
	}
	if err != nil {
		return fmt.Errorf("reading the stream: %w", err)
	}
	return nil
}

// checkSubject accepts dot-separated tokens, '*' tokens and a final '>'.
func checkSubject(s string) error {
	toks := strings.Split(s, ".")
	for i, t := range toks {
		switch {
		case t == "" || strings.ContainsAny(t, " \t\r\n"):
			return fmt.Errorf("%q is not a subject", s)
		case t == ">" && i != len(toks)-1:
			return fmt.Errorf("%q: '>' must be the last token", s)
		case len(t) > 1 && strings.ContainsAny(t, "*>"):
			return fmt.Errorf("%q: wildcards are whole tokens", s)
		}
	}
	return nil
}

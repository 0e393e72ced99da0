package downloader

import (
	"fmt"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// MaxRangeMonths is the longest PermanentStorage date range KSeF takes in one query
// (in-practice.md: "a date range of at most 3 months").
const MaxRangeMonths = 3

// RequestError says a query.requested can never succeed as sent: the worker dead-letters it with
// Reason instead of retrying.
type RequestError struct {
	QueryID string
	Reason  string
}

func (e *RequestError) Error() string {
	return "downloader: query " + e.QueryID + " rejected: " + e.Reason
}

// rangeEnd is the latest end a query starting at from may have.
func rangeEnd(from time.Time) time.Time { return from.AddDate(0, MaxRangeMonths, 0) }

// subjectType maps the event's subject type to the API's.
func subjectType(s string) (ksefapi.SubjectType, bool) {
	st := ksefapi.SubjectType(s)
	return st, st.Valid()
}

// plan is what one query.requested asks for once its defaults are resolved.
type plan struct {
	subject ksefapi.SubjectType
	from    time.Time // start of the first window
	end     time.Time // end of the last window
	// incremental: from comes from the high-water mark and the range may span several windows
	// of at most MaxRangeMonths.
	incremental bool
}

// validate checks what events.Decode does not: a known subject type, from before to, and for a
// plain query a range KSeF accepts. now stands in for a missing To.
func validate(req *events.QueryRequested, now time.Time) error {
	bad := func(format string, args ...any) error {
		return &RequestError{QueryID: req.QueryID, Reason: fmt.Sprintf(format, args...)}
	}
	if req.QueryID == "" {
		return bad("query_id is missing")
	}
	if !ksef.IsNIP(req.ContextNIP) {
		return bad("context_nip %q is not 10 digits", req.ContextNIP)
	}
	if _, ok := subjectType(req.SubjectType); !ok {
		return bad("unknown subject_type %q (want subject1, subject2, subject3 or subjectAuthorized)", req.SubjectType)
	}
	if req.From.IsZero() {
		return bad("from is missing")
	}
	to, toNow := endOf(req, now), req.To.IsZero()
	if !req.From.Before(to) {
		if toNow {
			return bad("from %s is not in the past", req.From)
		}
		return bad("from %s is not before to %s", req.From, req.To)
	}
	if !req.Incremental && to.After(rangeEnd(req.From.Time)) {
		return bad("range %s..%s is longer than %d months (KSeF's limit); split it or use incremental", req.From, events.At(to), MaxRangeMonths)
	}
	return nil
}

// endOf is where the range of req ends: its to; else for an incremental query now; else when the
// request was made (occurred_at), so that every delivery of the request, however late, plans
// the same range.
func endOf(req *events.QueryRequested, now time.Time) time.Time {
	switch {
	case !req.To.IsZero():
		return req.To.Time
	case !req.Incremental && !req.OccurredAt.IsZero() && req.OccurredAt.Before(now):
		return req.OccurredAt.Time
	}
	return now
}

// window is one KSeF query's PermanentStorage range.
type window struct{ from, to time.Time }

// nextWindow returns the window starting at cursor: up to the plan's end, at most MaxRangeMonths.
func (p *plan) nextWindow(cursor time.Time) window {
	return window{from: cursor, to: minTime(p.end, rangeEnd(cursor))}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

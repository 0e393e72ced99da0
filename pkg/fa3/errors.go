package fa3

import (
	"errors"
	"fmt"
)

// ErrorKind classifies why a document was refused.
type ErrorKind int

// Error kinds, in the order Validate checks them.
const (
	KindTooLarge      ErrorKind = iota + 1 // larger than the configured limit
	KindEmpty                              // zero bytes or only whitespace
	KindDTD                                // contains a DOCTYPE or entity declaration
	KindNotWellFormed                      // not well-formed XML (or not UTF-8)
	KindNotFA3                             // well-formed, but not an FA(3) Faktura (e.g. FA(2))
	KindSchema                             // fails the FA(3) XSD (or, in fallback mode, the structural checks)
	KindSemantic                           // schema-valid but inconsistent (totals, dates, lines); not a KSeF rule
	KindRule                               // breaks one of KSeF's XML rules (BOM, XML version, processing instruction, discouraged character)
	KindIssueDate                          // P_1 after the day of acceptance (KSeF's date rule)
	KindNIP                                // a NIP with a wrong check digit (KSeF's production-only rule)
)

var kindNames = map[ErrorKind]string{
	KindTooLarge:      "too large",
	KindEmpty:         "empty",
	KindDTD:           "dtd",
	KindNotWellFormed: "not well-formed",
	KindNotFA3:        "not FA(3)",
	KindSchema:        "schema",
	KindSemantic:      "semantic",
	KindRule:          "ksef rule",
	KindIssueDate:     "issue date",
	KindNIP:           "nip checksum",
}

func (k ErrorKind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("ErrorKind(%d)", int(k))
}

// ValidationError reports why a document was refused. Message is the first
// error found by the parser or validator; it never includes content loaded
// from outside the document, because documents with a DTD are refused before
// any parser sees them.
type ValidationError struct {
	Kind    ErrorKind
	Line    int // 1-based line in the document, 0 when unknown
	Message string
}

func (e *ValidationError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Message)
	}
	return e.Message
}

// KindOf returns the kind of a *ValidationError in err's chain, or 0.
func KindOf(err error) ErrorKind {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve.Kind
	}
	return 0
}

func verr(kind ErrorKind, line int, format string, args ...any) *ValidationError {
	return &ValidationError{Kind: kind, Line: line, Message: fmt.Sprintf(format, args...)}
}

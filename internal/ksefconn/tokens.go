package ksefconn

import (
	"bufio"
	"errors"
	"fmt"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"io"
	"slices"
	"strings"
)

// Tokens maps a context NIP to its KSeF token. Its String never shows a token.
type Tokens map[string]string

// String lists the NIPs only.
func (t Tokens) String() string {
	nips := make([]string, 0, len(t))
	for nip := range t {
		nips = append(nips, nip)
	}
	return fmt.Sprintf("Tokens(%d contexts: %s)", len(t), strings.Join(slices.Sorted(slices.Values(nips)), ","))
}

// GoString is String, so %#v does not print tokens either.
func (t Tokens) GoString() string { return t.String() }

// ParseTokens reads "nip=token" pairs separated by commas, semicolons or newlines; blank entries
// and lines starting with '#' are skipped. Errors name the entry by position, never its token.
func ParseTokens(s string) (Tokens, error) {
	out := Tokens{}
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	var errs []error
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, entry := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ';' }) {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			n++
			nip, tok, ok := strings.Cut(entry, "=")
			nip, tok = strings.TrimSpace(nip), strings.TrimSpace(tok)
			switch {
			case !ok || tok == "":
				errs = append(errs, fmt.Errorf("entry %d: want nip=token", n))
			case !ksef.IsNIP(nip):
				// Not echoed: a line written token=nip would print the token.
				errs = append(errs, fmt.Errorf("entry %d: what precedes '=' is not a 10-digit NIP (want nip=token)", n))
			case out[nip] != "":
				errs = append(errs, fmt.Errorf("entry %d: NIP %s given twice", n, nip))
			default:
				out[nip] = tok
			}
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("ksefconn: tokens: %w", err)
	}
	return out, nil
}

// ReadTokens parses a token file (one nip=token a line, see ParseTokens).
func ReadTokens(r io.Reader) (Tokens, error) {
	b, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("ksefconn: tokens: %w", err)
	}
	return ParseTokens(string(b))
}

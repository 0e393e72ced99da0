package emulator

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
)

// ParseTokens reads the tokens the emulator accepts, as "token=NIP" or "NIP=token" pairs
// separated by commas, semicolons or newlines (blank entries and lines starting with '#' are
// skipped). The side that is a NIP (10 digits) is the context; when both sides are, the entry
// is read as NIP=token, the order of the pipeline's KSEF_TOKENS, so that one secrets file
// serves both. The result maps token to NIP, as Config.Tokens. Errors never contain a token.
func ParseTokens(s string) (map[string]string, error) {
	out := make(map[string]string)
	var errs []error
	n := 0
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, entry := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ';' }) {
			if entry = strings.TrimSpace(entry); entry == "" {
				continue
			}
			n++
			a, b, ok := strings.Cut(entry, "=")
			a, b = strings.TrimSpace(a), strings.TrimSpace(b)
			var token, nip string
			switch {
			case !ok || a == "" || b == "":
				errs = append(errs, fmt.Errorf("entry %d: want token=NIP or NIP=token", n))
				continue
			case isDigits10(a):
				nip, token = a, b
			case isDigits10(b):
				token, nip = a, b
			default:
				errs = append(errs, fmt.Errorf("entry %d: neither side is a NIP (10 digits)", n))
				continue
			}
			if !validNIP(nip) {
				errs = append(errs, fmt.Errorf("entry %d: %s is not a valid NIP", n, nip))
				continue
			}
			if _, dup := out[token]; dup {
				errs = append(errs, fmt.Errorf("entry %d: token given twice", n))
				continue
			}
			out[token] = nip
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("emulator: tokens: %w", err)
	}
	return out, nil
}

func isDigits10(s string) bool {
	if len(s) != 10 {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

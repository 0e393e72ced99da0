package fa3

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"
)

// xsdDecimalRe is the lexical space of xsd:decimal (no exponent, no fractions).
var xsdDecimalRe = regexp.MustCompile(`^[+-]?(\d+(\.\d*)?|\.\d+)$`)

// parseDecimal parses an xsd:decimal exactly.
func parseDecimal(s string) (*big.Rat, error) {
	s = strings.TrimSpace(s)
	if !xsdDecimalRe.MatchString(s) {
		return nil, fmt.Errorf("%q is not a decimal number", s)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("%q is not a decimal number", s)
	}
	return r, nil
}

// formatDecimal renders r rounded half away from zero to places fraction
// digits, then drops trailing fraction zeros beyond min digits.
func formatDecimal(r *big.Rat, places, min int) string {
	s := r.FloatString(places)
	if strings.HasPrefix(s, "-") && strings.Trim(s, "-0.") == "" {
		s = s[1:] // no negative zero
	}
	if i := strings.IndexByte(s, '.'); i >= 0 {
		for len(s)-i-1 > min && s[len(s)-1] == '0' {
			s = s[:len(s)-1]
		}
		s = strings.TrimSuffix(s, ".")
	}
	return s
}

// roundTo rounds r half away from zero to places fraction digits.
func roundTo(r *big.Rat, places int) *big.Rat {
	out, _ := new(big.Rat).SetString(r.FloatString(places))
	return out
}

var hundredth = big.NewRat(1, 100)

// absDiff returns |a-b|.
func absDiff(a, b *big.Rat) *big.Rat {
	d := new(big.Rat).Sub(a, b)
	return d.Abs(d)
}

package fa3

import (
	"cmp"
	"fmt"
	"math"
	"math/big"
	"math/bits"
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

// num is an exact decimal for CheckSemantics: m/10^exp in an int64 while
// it fits, else r. The fixed-point form keeps the usual amounts (2 fraction
// digits), quantities (6) and prices (8) free of allocations; any operation
// that would overflow it is done with big.Rat instead, so every result is
// exactly what big.Rat arithmetic gives.
type num struct {
	m   int64
	exp uint8    // fraction digits, at most maxExp
	r   *big.Rat // the value, when it does not fit m and exp
}

const maxExp = 18

var pow10 = [maxExp + 1]int64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
	1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18}

// fixed returns m/10^exp.
func fixed(m int64, exp uint8) num { return num{m: m, exp: exp} }

// parseNum parses an xsd:decimal exactly; it accepts and refuses what
// parseDecimal does, with the same error.
func parseNum(s string) (num, error) {
	s = strings.TrimSpace(s)
	digits, frac, dot := 0, 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
			if dot {
				frac++
			}
		case c == '.' && !dot:
			dot = true
		case (c == '+' || c == '-') && i == 0:
		default:
			digits = 0
			i = len(s)
		}
	}
	if digits == 0 {
		return num{}, fmt.Errorf("%q is not a decimal number", s)
	}
	if digits > maxExp {
		r, err := parseDecimal(s)
		return num{r: r}, err
	}
	var m int64
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			m = m*10 + int64(c-'0')
		}
	}
	if s[0] == '-' {
		m = -m
	}
	return fixed(m, uint8(frac)), nil
}

// rat returns n as a big.Rat.
func (n num) rat() *big.Rat {
	if n.r != nil {
		return n.r
	}
	return new(big.Rat).SetFrac(big.NewInt(n.m), big.NewInt(pow10[n.exp]))
}

// aligned returns the mantissas of a and b at their common exponent, or
// ok=false when either is a big.Rat or scaling would overflow.
func aligned(a, b num) (am, bm int64, exp uint8, ok bool) {
	if a.r != nil || b.r != nil {
		return 0, 0, 0, false
	}
	am, bm, exp = a.m, b.m, max(a.exp, b.exp)
	if am, ok = scale(am, exp-a.exp); !ok {
		return 0, 0, 0, false
	}
	bm, ok = scale(bm, exp-b.exp)
	return am, bm, exp, ok
}

// scale returns m×10^k, or ok=false on overflow.
func scale(m int64, k uint8) (int64, bool) {
	p := pow10[k]
	if m > math.MaxInt64/p || m < -math.MaxInt64/p {
		return 0, false
	}
	return m * p, true
}

func (n num) add(o num) num {
	if a, b, exp, ok := aligned(n, o); ok {
		if s := a + b; (s > a) == (b > 0) { // no overflow
			return fixed(s, exp)
		}
	}
	return num{r: new(big.Rat).Add(n.rat(), o.rat())}
}

func (n num) neg() num {
	if n.r == nil && n.m != math.MinInt64 {
		return fixed(-n.m, n.exp)
	}
	return num{r: new(big.Rat).Neg(n.rat())}
}

func (n num) sub(o num) num { return n.add(o.neg()) }

func (n num) abs() num {
	if n.cmp(num{}) < 0 {
		return n.neg()
	}
	return n
}

func (n num) mul(o num) num {
	if n.r == nil && o.r == nil && int(n.exp)+int(o.exp) <= maxExp {
		hi, lo := bits.Mul64(uabs(n.m), uabs(o.m))
		if hi == 0 && lo <= math.MaxInt64 {
			m := int64(lo)
			if (n.m < 0) != (o.m < 0) {
				m = -m
			}
			return fixed(m, n.exp+o.exp)
		}
	}
	return num{r: new(big.Rat).Mul(n.rat(), o.rat())}
}

func uabs(m int64) uint64 {
	if m < 0 {
		return uint64(-m) // also right for math.MinInt64
	}
	return uint64(m)
}

// cmp compares like big.Rat.Cmp.
func (n num) cmp(o num) int {
	if a, b, _, ok := aligned(n, o); ok {
		return cmp.Compare(a, b)
	}
	return n.rat().Cmp(o.rat())
}

// within reports whether |a-b| <= tol.
func within(a, b, tol num) bool { return a.sub(b).abs().cmp(tol) <= 0 }

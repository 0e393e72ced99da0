package visualize

import (
	"math/big"
	"strings"
	"time"
)

// Number formatting works on the decimal text of the document, never on
// floats, so that what is printed is exactly what the invoice says.

// nbsp groups thousands in Polish ("4 001,49") without letting a line break
// split an amount.
const nbsp = "\u00a0"

// decimalParts splits a decimal literal ("-1234.5", " 0.00") into sign,
// integer digits and fraction digits; ok is false for anything else.
func decimalParts(s string) (neg bool, intPart, frac string, ok bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return false, "", "", false
	}
	switch s[0] {
	case '-':
		neg, s = true, s[1:]
	case '+':
		s = s[1:]
	}
	intPart, frac, _ = strings.Cut(s, ".")
	if intPart == "" {
		intPart = "0"
	}
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return false, "", "", false
			}
		}
	}
	intPart = strings.TrimLeft(intPart, "0")
	if intPart == "" {
		intPart = "0"
	}
	return neg, intPart, frac, true
}

// formatDecimal prints a decimal literal with at least minFrac fraction
// digits (trailing zeros beyond that are dropped) in the language's style:
// "4 001,49" for Polish, "4,001.49" for English. Text that is not a decimal
// is returned trimmed but otherwise unchanged.
func (l Language) formatDecimal(s string, minFrac int) string {
	neg, intPart, frac, ok := decimalParts(s)
	if !ok {
		return strings.TrimSpace(s)
	}
	frac = strings.TrimRight(frac, "0")
	for len(frac) < minFrac {
		frac += "0"
	}
	group, point := nbsp, ","
	if l == LangEN {
		group, point = ",", "."
	}
	var b strings.Builder
	if neg && (strings.Trim(intPart, "0") != "" || strings.Trim(frac, "0") != "") {
		b.WriteByte('-')
	}
	for i := 0; i < len(intPart); i++ {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteString(group)
		}
		b.WriteByte(intPart[i])
	}
	if frac != "" {
		b.WriteString(point)
		b.WriteString(frac)
	}
	return b.String()
}

// amount formats a monetary amount (2 decimals).
func (l Language) amount(s string) string { return l.formatDecimal(s, 2) }

// quantity formats a quantity or exchange rate (no padding).
func (l Language) quantity(s string) string { return l.formatDecimal(s, 0) }

// sumDecimals adds decimal literals exactly; ok is false if any is not a
// decimal.
func sumDecimals(vals ...string) (string, bool) {
	total := new(big.Rat)
	for _, v := range vals {
		if strings.TrimSpace(v) == "" {
			continue
		}
		r, ok := new(big.Rat).SetString(strings.TrimSpace(v))
		if !ok {
			return "", false
		}
		total.Add(total, r)
	}
	return total.FloatString(2), true
}

// rate formats a VAT rate (P_12): numeric rates get a percent sign, the
// symbolic ones (zw, oo, np I, np II, 0 KR, 0 WDT, 0 EX) are kept as the
// Ministry's visualization shows them.
func rate(s string) string {
	s = strings.TrimSpace(s)
	if _, _, _, ok := decimalParts(s); ok {
		return s + "%"
	}
	if rest, ok := strings.CutPrefix(s, "0 "); ok {
		return "0% " + rest
	}
	return s
}

// date formats an xsd:date: DD.MM.YYYY in Polish, YYYY-MM-DD in English.
func (l Language) date(s string) string {
	s = strings.TrimSpace(s)
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return s
	}
	if l == LangEN {
		return t.Format(time.DateOnly)
	}
	return t.Format("02.01.2006")
}

// dateTime formats an xsd:dateTime in UTC, to the minute.
func (l Language) dateTime(s string) string {
	s = strings.TrimSpace(s)
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return s
	}
	t = t.UTC()
	if l == LangEN {
		return t.Format("2006-01-02 15:04:05 UTC")
	}
	return t.Format("02.01.2006 15:04:05 UTC")
}

// creationTime picks the fixed PDF creation date: the invoice's
// DataWytworzeniaFa, else its issue date, else the Unix epoch. Never the
// clock, so the same input gives the same bytes.
func creationTime(dataWytworzenia, issueDate string) time.Time {
	if t, err := time.Parse(time.RFC3339, strings.TrimSpace(dataWytworzenia)); err == nil {
		return t.UTC()
	}
	if t, err := time.Parse(time.DateOnly, strings.TrimSpace(issueDate)); err == nil {
		return t.UTC()
	}
	return time.Unix(0, 0).UTC()
}

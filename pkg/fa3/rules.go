package fa3

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"time"
	_ "time/tzdata" // KSeF's days are Polish days, also where the system has no zoneinfo
	"unicode/utf8"
)

// KSeF's own verification rules (the Ministry's "Weryfikacja faktury",
// official/faktury/weryfikacja-faktury.md) that can be checked on the document alone. Validate
// applies the XML ones and the size limits; CheckIssueDate and CheckNIPs are the rest.

// Size limits of one invoice, in bytes (not MiB): 1 MB without attachments, 3 MB with.
const (
	MaxInvoiceSize                = 1_000_000
	MaxInvoiceSizeWithAttachments = 3_000_000
)

// xmlDeclStart is the start of an XML declaration; "<?xml-stylesheet" is a PI, not one.
var xmlDeclStart = regexp.MustCompile(`^<\?xml[ \t\r\n]`)

// checkDocumentRules applies KSeF's XML rules to the bytes: no UTF-8 byte order mark, no
// processing instructions, none of the discouraged characters of the listed ranges (written
// as they are or as character references). precheck has refused other encodings already;
// xmlCheck refuses XML versions other than 1.0.
func checkDocumentRules(data []byte) *ValidationError {
	if bytes.HasPrefix(data, utf8BOM) {
		return verr(KindRule, 1, "the document starts with a UTF-8 byte order mark (EF BB BF); KSeF takes UTF-8 without one")
	}
	body := 0
	if xmlDeclStart.Match(data) {
		end := bytes.Index(data, []byte("?>"))
		if end < 0 {
			return verr(KindNotWellFormed, 1, "unterminated XML declaration")
		}
		body = end + 2
	}
	if off := processingInstruction(data, body); off >= 0 {
		return verr(KindRule, lineAt(data, off), "processing instructions are not allowed")
	}
	if off, r := discouragedChar(data); off >= 0 {
		return verr(KindRule, lineAt(data, off), "character U+%04X is one of the discouraged Unicode characters KSeF refuses", r)
	}
	return nil
}

// processingInstruction returns the offset of the first "<?" at or after from that is not in a
// comment or a CDATA section, or -1. The XML declaration ends before from.
func processingInstruction(data []byte, from int) int {
	if bytes.Index(data[from:], []byte("<?")) < 0 {
		return -1 // the common case, found by one fast search
	}
	for i := from; i < len(data); {
		j := bytes.IndexByte(data[i:], '<')
		if j < 0 {
			return -1
		}
		i += j
		rest := data[i:]
		switch {
		case bytes.HasPrefix(rest, []byte("<?")):
			return i
		case bytes.HasPrefix(rest, []byte("<!--")):
			end := bytes.Index(rest[4:], []byte("-->"))
			if end < 0 {
				return -1 // not well-formed: the parser says so
			}
			i += 4 + end + 3
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			end := bytes.Index(rest[9:], []byte("]]>"))
			if end < 0 {
				return -1
			}
			i += 9 + end + 3
		default:
			i++
		}
	}
	return -1
}

// Discouraged reports whether r is in one of the ranges of discouraged characters KSeF refuses:
// [#x7F-#x84], [#x86-#x9F], [#xFDD0-#xFDEF] and the last two code points of planes 1 to 16.
func Discouraged(r rune) bool {
	switch {
	case r >= 0x7F && r <= 0x84, r >= 0x86 && r <= 0x9F, r >= 0xFDD0 && r <= 0xFDEF:
		return true
	case r >= 0x1FFFE && r <= 0x10FFFF:
		return r&0xFFFE == 0xFFFE
	}
	return false
}

// discouragedChar returns the offset of the first discouraged character, literal or as a
// character reference (&#...;), and the character; -1 when there is none. Only DEL and the UTF-8
// lead bytes C2 (U+0080-U+00BF), EF (U+F000-U+FFFF) and F0-F4 (planes 1-16) can start one, so
// other bytes are stepped over without decoding.
func discouragedChar(data []byte) (int, rune) {
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case c == '&':
			if r, n := charRef(data[i:]); n > 0 {
				if Discouraged(r) {
					return i, r
				}
				i += n - 1
			}
		case c < 0x7F:
		case c == 0x7F:
			return i, 0x7F
		case c == 0xC2 || c == 0xEF || c >= 0xF0:
			r, n := utf8.DecodeRune(data[i:])
			if Discouraged(r) {
				return i, r
			}
			i += n - 1
		}
	}
	return -1, 0
}

// charRef decodes the character reference at the start of b ("&#123;" or "&#x7B;"); n is 0 when
// b does not start with one.
func charRef(b []byte) (rune, int) {
	if len(b) < 4 || b[1] != '#' {
		return 0, 0
	}
	end := bytes.IndexByte(b[:min(len(b), 13)], ';')
	if end < 3 || end > 12 {
		return 0, 0
	}
	digits, base := string(b[2:end]), 10
	if digits[0] == 'x' {
		digits, base = digits[1:], 16
	}
	v, err := strconv.ParseUint(digits, base, 32)
	if err != nil {
		return 0, 0
	}
	return rune(v), end + 1
}

// checkSize applies KSeF's size limits once it is known whether the invoice has attachments.
func checkSize(n int, inv *Invoice) *ValidationError {
	limit := MaxInvoiceSize
	if inv.Zalacznik != nil {
		limit = MaxInvoiceSizeWithAttachments
	}
	if n > limit {
		what := "without attachments"
		if inv.Zalacznik != nil {
			what = "with attachments"
		}
		return verr(KindTooLarge, 0, "the invoice is %d bytes; KSeF takes at most %d bytes %s", n, limit, what)
	}
	return nil
}

// Warsaw is the time zone of KSeF's days.
var Warsaw = mustZone("Europe/Warsaw")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(fmt.Sprintf("fa3: time zone %s: %v", name, err)) // embedded by time/tzdata
	}
	return loc
}

// CheckIssueDate applies KSeF's date rule: the issue date P_1 may not be later than the day KSeF
// accepts the invoice (accepted, taken as a day in Poland). An error is a *ValidationError of
// KindIssueDate; an unreadable P_1 is the schema's business and passes.
func CheckIssueDate(inv *Invoice, accepted time.Time) error {
	p1, err := time.ParseInLocation(dateLayout, inv.Fa.P_1, Warsaw)
	if err != nil {
		return nil
	}
	y, m, d := accepted.In(Warsaw).Date()
	if day := time.Date(y, m, d, 0, 0, 0, 0, Warsaw); p1.After(day) {
		return verr(KindIssueDate, 0, "P_1 (issue date) %s is after the day of acceptance %s", inv.Fa.P_1, day.Format(dateLayout))
	}
	return nil
}

// ValidNIP reports whether s is a ten-digit NIP with a correct check digit (weights 6 5 7 2 3 4
// 5 6 7, sum mod 11).
func ValidNIP(s string) bool {
	if len(s) != 10 {
		return false
	}
	weights := [9]int{6, 5, 7, 2, 3, 4, 5, 6, 7}
	sum := 0
	for i := range 10 {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		if i < 9 {
			sum += int(s[i]-'0') * weights[i]
		}
	}
	return sum%11 != 10 && sum%11 == int(s[9]-'0')
}

// CheckNIPs applies KSeF's production-only rule: the NIPs of Podmiot1, Podmiot2, every Podmiot3
// and PodmiotUpowazniony, and the NIP in a Podmiot3's internal identifier (IDWew, "NIP-5
// digits"), have correct check digits. An error is a *ValidationError of KindNIP naming the
// first wrong one.
func CheckNIPs(inv *Invoice) error {
	check := func(field, nip string) error {
		if nip != "" && !ValidNIP(nip) {
			return verr(KindNIP, 0, "%s: NIP %s has a wrong check digit", field, nip)
		}
		return nil
	}
	if err := check("Podmiot1", inv.Podmiot1.DaneIdentyfikacyjne.NIP); err != nil {
		return err
	}
	if err := check("Podmiot2", inv.Podmiot2.DaneIdentyfikacyjne.NIP); err != nil {
		return err
	}
	for i, p := range inv.Podmiot3 {
		name := "Podmiot3[" + strconv.Itoa(i+1) + "]"
		if err := check(name, p.DaneIdentyfikacyjne.NIP); err != nil {
			return err
		}
		if id := p.DaneIdentyfikacyjne.IDWew; id != "" {
			nip, _, _ := bytes.Cut([]byte(id), []byte("-"))
			if !ValidNIP(string(nip)) {
				return verr(KindNIP, 0, "%s: the NIP in the internal identifier %s has a wrong check digit", name, id)
			}
		}
	}
	if pu := inv.PodmiotUpowazniony; pu != nil {
		return check("PodmiotUpowazniony", pu.DaneIdentyfikacyjne.NIP)
	}
	return nil
}

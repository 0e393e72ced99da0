package fa3

import (
	"strings"
	"testing"
)

// TestCheckProlog: only UTF-8 documents that start with '<' (after an optional
// BOM) reach a parser; every other encoding of a DOCTYPE is stopped by the
// prolog check or by the NUL check after it, before libxml2 sees it.
func TestCheckProlog(t *testing.T) {
	const doctype = `<!DOCTYPE Faktura [<!ENTITY x SYSTEM "file:///etc/passwd">]><Faktura/>`
	ebcdic := func(s string) string {
		// Enough of code page 037 for the markup: '<' is 0x4C, '!' 0x5A, letters elsewhere.
		m := map[rune]byte{'<': 0x4C, '>': 0x6E, '!': 0x5A, ' ': 0x40, '/': 0x61, '[': 0xBA, ']': 0xBB, '"': 0x7F, ':': 0x7A, '.': 0x4B}
		var b strings.Builder
		for _, r := range s {
			if c, ok := m[r]; ok {
				b.WriteByte(c)
			} else {
				b.WriteByte(byte(0xC1 + (r-'A')%9)) // any letter-range byte
			}
		}
		return b.String()
	}
	utf16 := func(s string, le bool) string {
		var b strings.Builder
		for _, r := range s {
			if le {
				b.WriteByte(byte(r))
				b.WriteByte(0)
			} else {
				b.WriteByte(0)
				b.WriteByte(byte(r))
			}
		}
		return b.String()
	}
	cases := []struct {
		name string
		doc  string
		ok   bool
	}{
		{"plain", `<Faktura/>`, true},
		{"declaration UTF-8", `<?xml version="1.0" encoding="UTF-8"?><Faktura/>`, true},
		{"declaration utf8 single quotes", `<?xml version='1.0' encoding = 'utf8'?><Faktura/>`, true},
		{"declaration without encoding", `<?xml version="1.0"?><Faktura/>`, true},
		{"BOM then element", "\xef\xbb\xbf<Faktura/>", true},
		{"leading space", " <Faktura/>", false},
		{"leading newline", "\n<Faktura/>", false},
		{"ISO-8859-2", `<?xml version="1.0" encoding="ISO-8859-2"?><Faktura/>`, false},
		{"UTF-16 declared", `<?xml version="1.0" encoding="UTF-16"?><Faktura/>`, false},
		{"UTF-7 declared", `<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE`, false},
		{"UTF-7 undeclared", `+ADw-!DOCTYPE x+AD4-`, false},
		{"EBCDIC", ebcdic(doctype), false},
		{"UTF-16BE without BOM", utf16(doctype, false), false},
		{"UTF-16LE BOM", "\xff\xfe" + utf16(doctype, true), false},
		{"UTF-32BE", "\x00\x00\x00<\x00\x00\x00!", false},
		{"unterminated declaration", `<?xml version="1.0" encoding="UTF-8"`, false},
		{"malformed encoding", `<?xml version="1.0" encoding=UTF-8?><Faktura/>`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ve := checkProlog([]byte(c.doc))
			if (ve == nil) != c.ok {
				t.Fatalf("checkProlog = %v, want ok=%v", ve, c.ok)
			}
			// Whatever the prolog check lets through, precheck must still stop a
			// DOCTYPE in any of these encodings.
			if strings.Contains(c.name, "UTF-16") || c.name == "EBCDIC" || strings.HasPrefix(c.name, "UTF-7") || c.name == "UTF-32BE" {
				if precheck([]byte(c.doc)) == nil {
					t.Fatal("precheck let a non-UTF-8 document through")
				}
			}
		})
	}
}

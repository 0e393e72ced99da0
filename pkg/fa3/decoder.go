package fa3

import (
	"bytes"
	"encoding/xml"
	"reflect"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// fastDecode fills the model straight from the bytes of a prechecked
// document, without encoding/xml's tokens or per-element reflection
// lookups: a fraction of the time and allocations of decodeStd, which
// matters because every invoice is validated twice on its way to KSeF.
//
// It accepts a subset of what decodeStd accepts and must produce the
// identical model for it; anything else (every error, and rare but legal
// constructs such as non-ASCII names, DTD-like directives, or entities other
// than the predefined and numeric ones) makes it report ok=false, and the
// caller runs decodeStd, which also produces the exact error. The rules it
// checks are encoding/xml's in strict mode, including its quirks (no check
// of comment or processing instruction content, "]]>" refused in text).
// The equivalence is tested on every sample and fuzzed (decoder_test.go).
func fastDecode(data []byte) (inv *Invoice, ok bool) {
	p := parser{b: bytes.TrimPrefix(data, utf8BOM)}
	p.countBudget = len(p.b)
	if !p.misc(false) {
		return nil, false
	}
	name, empty, ok := p.startTag()
	if !ok || !p.rootIsFA3(name) {
		return nil, false
	}
	inv = &Invoice{XMLName: xml.Name{Space: Namespace, Local: "Faktura"}}
	if !p.structElement(invoiceInfo, reflect.ValueOf(inv).Elem(), name, empty) || !p.misc(true) {
		return nil, false
	}
	return inv, true
}

// parser is the state of one fastDecode call.
type parser struct {
	b     []byte
	i     int      // read position in b
	attrs []attr   // attributes of the start tag read last
	stack [][]byte // names of the open elements while skipping
	buf   []byte   // text of the current leaf when it cannot be a slice of b

	countBudget int // bytes appendZero may still scan for its capacity hints
}

// attr is an attribute as written: the raw value needs decoding unless plain.
type attr struct {
	name       []byte
	start, end int
	plain      bool
}

// misc skips whitespace, comments and processing instructions outside the
// root element. Before the root (after=false) it stops at the root's '<';
// after it, it must reach the end of the input.
func (p *parser) misc(after bool) bool {
	for {
		p.space()
		if p.i >= len(p.b) {
			return after
		}
		if p.b[p.i] != '<' || p.i+1 >= len(p.b) {
			return false
		}
		switch p.b[p.i+1] {
		case '?':
			if !p.procInst() {
				return false
			}
		case '!':
			if !p.comment() {
				return false
			}
		case '/':
			return false
		default:
			return !after
		}
	}
}

// rootIsFA3 reports whether the start tag just read is Faktura in the FA(3)
// namespace, resolving its prefix as encoding/xml does: with the root's own
// xmlns declarations (the last one wins), else the prefix itself.
func (p *parser) rootIsFA3(name []byte) bool {
	prefix, local := splitName(name)
	if string(local) != "Faktura" || string(prefix) == "xml" || string(prefix) == "xmlns" {
		return false
	}
	var space []byte
	found := false
	for _, a := range p.attrs {
		ap, al := splitName(a.name)
		if len(prefix) == 0 && len(ap) == 0 && string(al) == "xmlns" ||
			len(prefix) > 0 && string(ap) == "xmlns" && bytes.Equal(al, prefix) {
			space, found = p.attrValue(a, nil), true
		}
	}
	return found && string(space) == Namespace
}

// splitName splits a name like encoding/xml: at its only colon when both
// sides are non-empty, else the whole name is local.
func splitName(name []byte) (prefix, local []byte) {
	if i := bytes.IndexByte(name, ':'); i > 0 && i < len(name)-1 {
		return name[:i], name[i+1:]
	}
	return nil, name
}

// structElement fills v, described by mi, from the element whose start tag
// (name, empty) was just read.
func (p *parser) structElement(mi *modelInfo, v reflect.Value, name []byte, empty bool) bool {
	for _, a := range p.attrs {
		_, local := splitName(a.name)
		if i, ok := mi.attrs[string(local)]; ok {
			v.Field(i).SetString(string(p.attrValue(a, nil)))
		}
	}
	if mi.chardata < 0 {
		return empty || p.content(name, mi, v, nil)
	}
	var text textAcc
	if !empty && !p.content(name, mi, v, &text) {
		return false
	}
	v.Field(mi.chardata).SetString(text.String())
	return true
}

// leaf returns the text of a string element whose start tag was just read.
func (p *parser) leaf(name []byte, empty bool) (string, bool) {
	if empty {
		return "", true
	}
	text := textAcc{buf: p.buf[:0]}
	ok := p.content(name, nil, reflect.Value{}, &text)
	p.buf = text.buf
	return text.String(), ok
}

// field fills the field f of a struct from the element just opened.
func (p *parser) field(f modelField, fv reflect.Value, name []byte, empty bool) bool {
	switch f.kind {
	case kindString:
		s, ok := p.leaf(name, empty)
		fv.SetString(s)
		return ok
	case kindStrings:
		s, ok := p.leaf(name, empty)
		p.appendZero(fv, name).SetString(s)
		return ok
	case kindStruct:
		return p.structElement(f.elem, fv, name, empty)
	case kindPtr:
		if fv.IsNil() { // a repeated element fills the same struct, as in encoding/xml
			fv.Set(reflect.New(f.elem.typ))
		}
		return p.structElement(f.elem, fv.Elem(), name, empty)
	default: // kindSlice
		return p.structElement(f.elem, p.appendZero(fv, name), name, empty)
	}
}

// appendZero appends a zero element to the slice s, filled from elements
// called name, and returns it. When s is full it doubles it; once it holds
// 16 it makes room for all the name elements left in the document, which
// one fast scan counts: append's growth by 1.25 for large slices would
// allocate about five times the final size for thousands of lines. The
// count is only a capacity hint. The doubling bounds the number of scans
// per list, and countBudget their total to the size of the document, so
// that many long lists cannot make decoding quadratic.
func (p *parser) appendZero(s reflect.Value, name []byte) reflect.Value {
	n := s.Len()
	if n == s.Cap() {
		c := max(1, 2*n)
		if rest := p.b[p.i:]; n >= 16 && len(rest) <= p.countBudget {
			p.countBudget -= len(rest)
			c = max(c, n+1+bytes.Count(rest, append([]byte{'<'}, name...)))
		}
		grown := reflect.MakeSlice(s.Type(), n, c)
		reflect.Copy(grown, s)
		s.Set(grown)
	}
	s.SetLen(n + 1)
	return s.Index(n)
}

// content reads the content of the element name up to and including its end
// tag. Child elements go to the fields of v when mi is not nil and are
// skipped otherwise; the element's own text goes to text when it is not nil.
func (p *parser) content(name []byte, mi *modelInfo, v reflect.Value, text *textAcc) bool {
	for {
		start := p.i
		plain, ok := p.text(-1)
		if !ok || p.i+1 >= len(p.b) {
			return false
		}
		if text != nil && p.i > start {
			text.add(p.b[start:p.i], plain, true)
		}
		switch p.b[p.i+1] {
		case '/':
			return p.endTag(name)
		case '?':
			if !p.procInst() {
				return false
			}
		case '!':
			if !p.commentOrCDATA(text) {
				return false
			}
		default:
			child, empty, ok := p.startTag()
			if !ok {
				return false
			}
			if mi != nil {
				_, local := splitName(child)
				if f, found := mi.elems[string(local)]; found {
					if !p.field(f, v.Field(f.index), child, empty) {
						return false
					}
					continue
				}
			}
			if !empty && !p.skip(child) {
				return false
			}
		}
	}
}

// skip reads and checks the content of an element the model does not
// hold, up to and including its end tag. It keeps its own stack instead of
// recursing, so deep nesting costs no Go stack.
func (p *parser) skip(name []byte) bool {
	p.stack = append(p.stack[:0], name)
	for len(p.stack) > 0 {
		if _, ok := p.text(-1); !ok || p.i+1 >= len(p.b) {
			return false
		}
		switch p.b[p.i+1] {
		case '/':
			if !p.endTag(p.stack[len(p.stack)-1]) {
				return false
			}
			p.stack = p.stack[:len(p.stack)-1]
		case '?':
			if !p.procInst() {
				return false
			}
		case '!':
			if !p.commentOrCDATA(nil) {
				return false
			}
		default:
			child, empty, ok := p.startTag()
			if !ok {
				return false
			}
			if !empty {
				p.stack = append(p.stack, child)
			}
		}
	}
	return true
}

// startTag reads a start tag at '<', keeping its attributes in p.attrs.
func (p *parser) startTag() (name []byte, empty, ok bool) {
	p.i++
	if name, ok = p.name(true); !ok {
		return nil, false, false
	}
	p.attrs = p.attrs[:0]
	for {
		p.space()
		if p.i >= len(p.b) {
			return nil, false, false
		}
		switch p.b[p.i] {
		case '/':
			if p.i+1 < len(p.b) && p.b[p.i+1] == '>' {
				p.i += 2
				return name, true, true
			}
			return nil, false, false
		case '>':
			p.i++
			return name, false, true
		}
		an, ok := p.name(true)
		if !ok {
			return nil, false, false
		}
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != '=' {
			return nil, false, false
		}
		p.i++
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != '"' && p.b[p.i] != '\'' {
			return nil, false, false
		}
		p.i++
		a := attr{name: an, start: p.i}
		if a.plain, ok = p.text(int(p.b[a.start-1])); !ok {
			return nil, false, false
		}
		a.end = p.i
		p.i++ // the closing quote
		p.attrs = append(p.attrs, a)
	}
}

// endTag reads an end tag at "</", which must close the element name.
func (p *parser) endTag(name []byte) bool {
	p.i += 2
	end, ok := p.name(true)
	if !ok || !bytes.Equal(end, name) {
		return false
	}
	p.space()
	if p.i >= len(p.b) || p.b[p.i] != '>' {
		return false
	}
	p.i++
	return true
}

// name reads an XML name. Only ASCII names are accepted here; element and
// attribute names (ns) may have at most one colon, as in encoding/xml.
func (p *parser) name(ns bool) ([]byte, bool) {
	b, i := p.b, p.i
	if i >= len(b) || !nameStart(b[i]) {
		return nil, false
	}
	j, colons := i+1, 0
	for ; j < len(b) && isNameByte(b[j]); j++ {
		if b[j] == ':' {
			colons++
		}
	}
	if b[i] == ':' {
		colons++
	}
	if j < len(b) && b[j] >= utf8.RuneSelf || ns && colons > 1 {
		return nil, false
	}
	p.i = j
	return b[i:j], true
}

func nameStart(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_' || c == ':'
}

func isNameByte(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '_' || c == ':' || c == '.' || c == '-'
}

// space skips the whitespace encoding/xml skips inside tags.
func (p *parser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\r', '\n', '\t':
			p.i++
		default:
			return
		}
	}
}

// procInst skips a processing instruction at "<?". Its content is not
// checked (encoding/xml does not), except for the XML declaration, which is
// handed to encoding/xml itself so that its version and encoding rules
// apply exactly.
func (p *parser) procInst() bool {
	start := p.i
	p.i += 2
	target, ok := p.name(false)
	if !ok {
		return false
	}
	p.space()
	end := bytes.Index(p.b[p.i:], []byte("?>"))
	if end < 0 {
		return false
	}
	p.i += end + 2
	if string(target) == "xml" {
		if _, err := xml.NewDecoder(bytes.NewReader(p.b[start:p.i])).RawToken(); err != nil {
			return false
		}
	}
	return true
}

// comment skips a comment at "<!": it ends at the first "--", which must be
// followed by '>'. Anything else starting with "<!" is refused.
func (p *parser) comment() bool {
	if !bytes.HasPrefix(p.b[p.i:], []byte("<!--")) {
		return false
	}
	end := bytes.Index(p.b[p.i+4:], []byte("--"))
	if end < 0 {
		return false
	}
	p.i += 4 + end + 2
	if p.i >= len(p.b) || p.b[p.i] != '>' {
		return false
	}
	p.i++
	return true
}

// commentOrCDATA reads a comment or a CDATA section at "<!"; the section's
// text goes to text when it is not nil.
func (p *parser) commentOrCDATA(text *textAcc) bool {
	if !bytes.HasPrefix(p.b[p.i:], []byte("<![CDATA[")) {
		return p.comment()
	}
	start := p.i + len("<![CDATA[")
	n := bytes.Index(p.b[start:], []byte("]]>"))
	if n < 0 {
		return false
	}
	raw := p.b[start : start+n]
	plain := true
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c >= 0x20 && c < utf8.RuneSelf || c == '\t' || c == '\n':
			i++
		case c == '\r':
			plain = false
			i++
		case c >= utf8.RuneSelf:
			size, ok := validRune(raw[i:])
			if !ok {
				return false
			}
			i += size
		default:
			return false
		}
	}
	if text != nil && len(raw) > 0 {
		text.add(raw, plain, false)
	}
	p.i = start + n + 3
	return true
}

// text checks character data from p.i up to the next '<' (quote < 0) or
// up to the quote that ends an attribute value, and leaves p.i there.
// plain reports that the raw bytes are the text (no references, no
// carriage returns).
func (p *parser) text(quote int) (plain, ok bool) {
	b := p.b
	start, i := p.i, p.i
	plain = true
	for i < len(b) {
		c := b[i]
		switch {
		case c >= 0x20 && c < utf8.RuneSelf && c != '<' && c != '&' && c != '>' && int(c) != quote || c == '\n' || c == '\t':
			i++
		case int(c) == quote:
			p.i = i
			return plain, true
		case c == '<':
			if quote >= 0 {
				return false, false
			}
			p.i = i
			return plain, true
		case c == '>':
			if quote < 0 && i-start >= 2 && b[i-1] == ']' && b[i-2] == ']' {
				return false, false // "]]>" outside CDATA
			}
			i++
		case c == '&':
			n, _, ok := reference(b[i:])
			if !ok {
				return false, false
			}
			plain = false
			i += n
		case c == '\r':
			plain = false
			i++
		case c >= utf8.RuneSelf:
			size, ok := validRune(b[i:])
			if !ok {
				return false, false
			}
			i += size
		default:
			return false, false
		}
	}
	p.i = i
	return plain, quote < 0 // the end of the input ends text, not a quoted value
}

// attrValue returns the decoded value of a, appended to dst when it needs decoding.
func (p *parser) attrValue(a attr, dst []byte) []byte {
	raw := p.b[a.start:a.end]
	if a.plain {
		return raw
	}
	return appendDecoded(dst, raw, true)
}

// validRune checks the UTF-8 sequence at the start of b (b[0] >= 0x80) and
// that it is an XML character.
func validRune(b []byte) (int, bool) {
	r, size := utf8.DecodeRune(b)
	if r == utf8.RuneError && size == 1 || !isXMLChar(r) {
		return 0, false
	}
	return size, true
}

// isXMLChar is encoding/xml's isInCharacterRange: the Char production of XML 1.0.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// reference reads a character or entity reference at '&': one of the five
// predefined entities or a numeric reference whose character is allowed.
// It returns the bytes read and the character.
func reference(b []byte) (n int, r rune, ok bool) {
	for _, e := range [...]struct {
		s string
		r rune
	}{{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&apos;", '\''}, {"&quot;", '"'}} {
		if bytes.HasPrefix(b, []byte(e.s)) {
			return len(e.s), e.r, true
		}
	}
	if len(b) < 2 || b[1] != '#' {
		return 0, 0, false
	}
	i, base := 2, 10
	if i < len(b) && b[i] == 'x' {
		i, base = 3, 16
	}
	digits := i
	for i < len(b) && (b[i] >= '0' && b[i] <= '9' || base == 16 && (b[i]|0x20 >= 'a' && b[i]|0x20 <= 'f')) {
		i++
	}
	if i >= len(b) || b[i] != ';' {
		return 0, 0, false
	}
	v, err := strconv.ParseUint(string(b[digits:i]), base, 64)
	if err != nil || v > unicode.MaxRune {
		return 0, 0, false
	}
	r = rune(v)
	if !utf8.ValidRune(r) {
		r = utf8.RuneError // what string(rune(v)) gives encoding/xml
	}
	if !isXMLChar(r) {
		return 0, 0, false
	}
	return i + 1, r, true
}

// appendDecoded appends raw text, already checked, with references resolved
// (when refs) and line ends normalised to "\n" as encoding/xml does.
func appendDecoded(dst, raw []byte, refs bool) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '&' && refs:
			n, r, _ := reference(raw[i:])
			dst = utf8.AppendRune(dst, r)
			i += n
		case c == '\r':
			dst = append(dst, '\n')
			i++
		case c == '\n' && i > 0 && raw[i-1] == '\r':
			i++
		default:
			dst = append(dst, c)
			i++
		}
	}
	return dst
}

// textAcc gathers the text of one element, which may come in several
// pieces (around comments, CDATA sections or skipped child elements).
type textAcc struct {
	one   []byte // the only piece so far, as written
	buf   []byte // the decoded text once one is not enough
	inBuf bool
}

func (t *textAcc) add(raw []byte, plain, refs bool) {
	if !t.inBuf {
		if plain && len(t.one) == 0 {
			t.one = raw
			return
		}
		t.buf = append(t.buf[:0], t.one...)
		t.inBuf = true
	}
	if plain {
		t.buf = append(t.buf, raw...)
	} else {
		t.buf = appendDecoded(t.buf, raw, refs)
	}
}

func (t *textAcc) String() string {
	if t.inBuf {
		return string(t.buf)
	}
	return string(t.one)
}

package fa3

import "bytes"

// checkProlog refuses, before any parser sees them, documents that do not
// start with '<' (after an optional UTF-8 byte order mark) and documents whose
// XML declaration names an encoding other than UTF-8. A document in UTF-16,
// UTF-32, EBCDIC or UTF-7 fails one of the two, so the byte scan for
// DOCTYPE that follows can rely on seeing ASCII. It is kept to itself so that
// the rules on the BOM (weryfikacja-faktury.md: KSeF refuses one) can change
// in one place.
func checkProlog(data []byte) *ValidationError {
	data = bytes.TrimPrefix(data, utf8BOM)
	if len(data) == 0 || data[0] != '<' {
		return verr(KindNotWellFormed, 1, "document does not start with '<': not a UTF-8 XML document")
	}
	if !bytes.HasPrefix(data, []byte("<?xml")) || len(data) < 6 || !isXMLSpace(data[5]) {
		return nil // no XML declaration: UTF-8 by default
	}
	end := bytes.Index(data, []byte("?>"))
	if end < 0 {
		return verr(KindNotWellFormed, 1, "unterminated XML declaration")
	}
	decl := data[5:end]
	i := bytes.Index(decl, []byte("encoding"))
	if i < 0 {
		return nil
	}
	rest := bytes.TrimLeft(decl[i+len("encoding"):], " \t\r\n")
	if len(rest) == 0 || rest[0] != '=' {
		return verr(KindNotWellFormed, 1, "malformed encoding declaration")
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	if len(rest) < 2 || (rest[0] != '"' && rest[0] != '\'') {
		return verr(KindNotWellFormed, 1, "malformed encoding declaration")
	}
	q := bytes.IndexByte(rest[1:], rest[0])
	if q < 0 {
		return verr(KindNotWellFormed, 1, "malformed encoding declaration")
	}
	if enc := rest[1 : 1+q]; !bytes.EqualFold(enc, []byte("UTF-8")) && !bytes.EqualFold(enc, []byte("UTF8")) {
		return verr(KindNotWellFormed, 1, "unsupported encoding %q: FA(3) documents must be UTF-8", enc)
	}
	return nil
}

func isXMLSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

package fa3

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"regexp"
)

var (
	utf16BOMBE = []byte{0xFE, 0xFF}
	utf16BOMLE = []byte{0xFF, 0xFE}
	utf8BOM    = []byte{0xEF, 0xBB, 0xBF}
	// encodingDecl matches the encoding pseudo-attribute of the XML declaration.
	encodingDecl = regexp.MustCompile(`^\s*<\?xml[^>]*?encoding\s*=\s*["']([^"']*)["']`)
)

// precheck refuses inputs that no parser may see: empty ones, ones in an
// encoding other than UTF-8 (which could hide a DOCTYPE from the byte scan
// below) and any with a document type declaration or entity declaration
// (external entities, entity expansion bombs).
func precheck(data []byte) *ValidationError {
	if len(bytes.TrimSpace(data)) == 0 {
		return verr(KindEmpty, 0, "empty document")
	}
	if ve := checkProlog(data); ve != nil {
		return ve
	}
	if bytes.HasPrefix(data, utf16BOMBE) || bytes.HasPrefix(data, utf16BOMLE) || bytes.IndexByte(data, 0) >= 0 {
		return verr(KindNotWellFormed, 1, "document is not UTF-8 encoded")
	}
	if m := encodingDecl.FindSubmatch(bytes.TrimPrefix(data, utf8BOM)); m != nil {
		enc := string(bytes.ToUpper(m[1]))
		if enc != "UTF-8" && enc != "UTF8" {
			return verr(KindNotWellFormed, 1, "unsupported encoding %q: FA(3) documents must be UTF-8", m[1])
		}
	}
	if i := declaration(data); i >= 0 {
		return verr(KindDTD, lineAt(data, i), "document type declarations are not allowed")
	}
	return nil
}

// declaration returns the offset of the first "<!DOCTYPE", else of the
// first "<!ENTITY", else -1. It looks for '!', which is rare in invoices,
// rather than '<', which starts every tag.
func declaration(data []byte) int {
	entity := -1
	for i := 1; i < len(data); i++ {
		j := bytes.IndexByte(data[i:], '!')
		if j < 0 {
			break
		}
		i += j
		if data[i-1] != '<' {
			continue
		}
		if bytes.HasPrefix(data[i+1:], []byte("DOCTYPE")) {
			return i - 1
		}
		if entity < 0 && bytes.HasPrefix(data[i+1:], []byte("ENTITY")) {
			entity = i - 1
		}
	}
	return entity
}

// lineAt returns the 1-based line of byte offset off.
func lineAt(data []byte, off int) int {
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// Parse decodes an FA(3) document into the model. It refuses documents
// with a DTD before any parser sees them and checks that the root element is
// Faktura in the FA(3) namespace; it does not validate against the schema
// (see Validator). Errors are *ValidationError.
func Parse(data []byte) (*Invoice, error) {
	if ve := precheck(data); ve != nil {
		return nil, ve
	}
	return decode(data)
}

// decode parses data (already prechecked) into the model: with fastDecode
// when it can, else with decodeStd, which gives the same model and reports
// the errors.
func decode(data []byte) (*Invoice, error) {
	if inv, ok := fastDecode(data); ok {
		return inv, nil
	}
	return decodeStd(data)
}

// decodeStd parses data (already prechecked) with encoding/xml, which expands
// no entities beyond the five predefined ones.
func decodeStd(data []byte) (*Invoice, error) {
	// encoding/xml does not skip a UTF-8 byte order mark; libxml2 does.
	data = bytes.TrimPrefix(data, utf8BOM)
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var root *xml.StartElement
	for root == nil {
		tok, err := d.Token()
		if err != nil {
			return nil, syntaxErr(d, data, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			root = &t
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				line, _ := d.InputPos()
				return nil, verr(KindNotWellFormed, line, "content before the root element")
			}
		case xml.Directive:
			// Only DOCTYPE-like directives exist; precheck refused them already,
			// this catches anything it could not see.
			line, _ := d.InputPos()
			return nil, verr(KindDTD, line, "document type declarations are not allowed")
		}
	}
	if ve := checkRoot(root.Name.Space, root.Name.Local); ve != nil {
		line, _ := d.InputPos()
		ve.Line = line
		return nil, ve
	}
	inv := new(Invoice)
	if err := d.DecodeElement(inv, root); err != nil {
		return nil, syntaxErr(d, data, err)
	}
	// Nothing but whitespace, comments and processing instructions may follow.
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, syntaxErr(d, data, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			line, _ := d.InputPos()
			return nil, verr(KindNotWellFormed, line, "extra content at the end of the document")
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				line, _ := d.InputPos()
				return nil, verr(KindNotWellFormed, line, "extra content at the end of the document")
			}
		case xml.Directive:
			line, _ := d.InputPos()
			return nil, verr(KindDTD, line, "document type declarations are not allowed")
		}
	}
	return inv, nil
}

func syntaxErr(d *xml.Decoder, data []byte, err error) *ValidationError {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return verr(KindNotWellFormed, se.Line, "%s", se.Msg)
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return verr(KindNotWellFormed, lineAt(data, len(data)), "unexpected end of document")
	}
	line, _ := d.InputPos()
	return verr(KindNotWellFormed, line, "%v", err)
}

// checkRoot accepts only Faktura in the FA(3) namespace.
func checkRoot(space, local string) *ValidationError {
	switch {
	case space == FA2Namespace:
		return verr(KindNotFA3, 0, "document is FA(2) (namespace %s); only FA(3) (%s) is accepted", FA2Namespace, Namespace)
	case space != Namespace:
		return verr(KindNotFA3, 0, "root element {%s}%s is not an FA(3) Faktura (namespace %s)", space, local, Namespace)
	case local != "Faktura":
		return verr(KindNotFA3, 0, "root element %s is not Faktura", local)
	}
	return nil
}

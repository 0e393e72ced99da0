package fa3

import "math"

// Canonical returns the Exclusive XML Canonicalization 1.0 form (without
// comments) of data, computed by libxml2. Exclusive C14N is the form XML
// signatures over KSeF documents use; it drops the XML declaration,
// normalises attribute order, quoting and namespace declarations, and keeps
// whitespace, so two serialisations of the same document compare equal
// byte for byte. Documents with a DTD are refused like everywhere else.
func Canonical(data []byte) ([]byte, error) {
	if ve := precheck(data); ve != nil {
		return nil, ve
	}
	if len(data) > math.MaxInt32 {
		return nil, verr(KindTooLarge, 0, "document is too large")
	}
	return c14n(data)
}

// Package fa3 handles the FA(3) structured e-invoice of KSeF, the Polish
// national e-invoicing system: a Go model of the document (Invoice), safe
// parsing (Parse), validation against the Ministry of Finance's XSD set
// with libxml2 through cgo (Validator) with a structural fallback when no
// schema is configured, generation from structured data (Generate) and the
// exclusive canonical form (Canonical).
//
// What KSeF itself verifies (the Ministry's "Weryfikacja faktury") is split
// between Validate (its XML rules, the schema and the size limits),
// CheckIssueDate and CheckNIPs (production only). CheckSemantics and
// Warnings check what KSeF does not (totals, line arithmetic, date order):
// advice about an invoice, never a reason KSeF would refuse it.
//
// Untrusted input is handled defensively: any document containing a
// DOCTYPE or entity declaration is refused before a parser sees it (no
// external entities, no entity expansion), only UTF-8 is accepted, and
// libxml2 runs with XML_PARSE_NONET, without entity substitution, DTD
// loading or XML_PARSE_HUGE. Errors about documents are *ValidationError
// values carrying the first error found and its line.
//
// The schema is read from a directory (the Ministry's FA folder with
// schemat_FA(3)_v1-0E.xsd and bazowe/); it is never embedded in the binary.
// The package needs libxml2 (pkg-config libxml-2.0) at build time.
package fa3

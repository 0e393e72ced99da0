package fa3

/*
#include <libxml/xmlschemas.h>
*/
import "C"

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

// Schema file names inside the schema directory.
const (
	MainSchemaFile = "schemat_FA(3)_v1-0E.xsd"
	// structuresURL is where the main schema imports the Ministry's shared
	// types from; the same file ships in bazowe/.
	structuresURL  = "http://crd.gov.pl/xml/schematy/dziedzinowe/mf/2022/01/05/eD/DefinicjeTypy/StrukturyDanych_v10-0E.xsd"
	structuresFile = "bazowe/StrukturyDanych_v10-0E.xsd"
)

// DefaultMaxSize is the default document size limit: 3 MB, the KSeF limit
// for an invoice with attachments. Validate also applies the 1 MB limit of
// invoices without attachments once it has parsed the document.
const DefaultMaxSize = MaxInvoiceSizeWithAttachments

// Version is the schema version reported in Result.
const Version = "v3"

// Option configures a Validator.
type Option func(*Validator)

// WithMaxSize sets the size limit in bytes (KindTooLarge above it); n <= 0 keeps the default.
func WithMaxSize(n int64) Option {
	return func(v *Validator) {
		if n > 0 {
			v.maxSize = n
		}
	}
}

// Validator checks FA(3) documents against the Ministry's XSD set, compiled
// once by NewValidator. It is safe for concurrent use: the compiled schema is
// shared read-only and every call gets its own parser and validation context.
type Validator struct {
	maxSize int64

	mu      sync.RWMutex // guards schema against Close during Validate
	schema  *C.xmlSchema // nil in fallback mode
	cleanup runtime.Cleanup
	dir     string
}

// Result is the outcome of a successful validation.
type Result struct {
	Version         string   // "v3"
	SchemaValidated bool     // false when only the structural fallback ran
	Invoice         *Invoice // the parsed document
}

// NewValidator loads and compiles the FA(3) schema from schemaDir, the FA
// directory holding schemat_FA(3)_v1-0E.xsd and bazowe/. The main schema
// imports its shared types by http URL; that import is pointed at the local
// copy in bazowe/, so nothing is ever fetched from the network.
//
// When schemaDir is "" or does not exist, NewValidator returns a Validator
// in fallback mode (structural checks only) and a nil error; it logs
// nothing, so callers must check SchemaValidated and warn loudly. Any other
// problem (unreadable, incomplete or broken schema) is an error.
func NewValidator(schemaDir string, opts ...Option) (*Validator, error) {
	v := &Validator{maxSize: DefaultMaxSize}
	for _, o := range opts {
		o(v)
	}
	if schemaDir == "" {
		return v, nil
	}
	if _, err := os.Stat(schemaDir); errors.Is(err, fs.ErrNotExist) {
		return v, nil
	}
	main := filepath.Join(schemaDir, MainSchemaFile)
	xsd, err := os.ReadFile(main)
	if err != nil {
		return nil, fmt.Errorf("fa3: reading schema: %w", err)
	}
	abs, err := filepath.Abs(filepath.Join(schemaDir, structuresFile))
	if err != nil {
		return nil, fmt.Errorf("fa3: schema path: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("fa3: schema set incomplete: %w", err)
	}
	local := (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
	var esc bytes.Buffer
	if err := xmlEscape(&esc, local); err != nil {
		return nil, err
	}
	rewritten := bytes.Replace(xsd, []byte(`schemaLocation="`+structuresURL+`"`), []byte(`schemaLocation="`+esc.String()+`"`), 1)
	if bytes.Equal(rewritten, xsd) {
		return nil, fmt.Errorf("fa3: %s does not import %s: unknown schema version", main, structuresURL)
	}
	if bytes.Contains(rewritten, []byte(`schemaLocation="http`)) {
		// Any other remote import would make libxml2 reach for the network.
		return nil, fmt.Errorf("fa3: %s imports a remote schema other than %s", main, structuresURL)
	}
	schema, err := loadSchema(rewritten)
	if err != nil {
		return nil, fmt.Errorf("fa3: compiling %s: %w", main, err)
	}
	v.schema = schema
	v.dir = schemaDir
	v.cleanup = runtime.AddCleanup(v, freeSchema, schema)
	return v, nil
}

// Close frees the compiled schema. The Validator falls back to structural
// checks afterwards. Close need not be called: an unreachable Validator's
// schema is freed by the garbage collector.
func (v *Validator) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.schema != nil {
		v.cleanup.Stop()
		freeSchema(v.schema)
		v.schema = nil
	}
	return nil
}

// SchemaValidated reports whether the Validator checks against the XSD (false in fallback mode).
func (v *Validator) SchemaValidated() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.schema != nil
}

// SchemaDir returns the schema directory in use, "" in fallback mode.
func (v *Validator) SchemaDir() string { return v.dir }

// Validate checks data as KSeF does before it looks at the content, in this
// order: size limit, empty, UTF-8 only, DOCTYPE, KSeF's XML rules (no byte
// order mark, XML 1.0, no processing instructions, no discouraged
// characters: KindRule), well-formedness, root element and namespace (FA(3)
// only), the XSD (or, in fallback mode, structural checks), then KSeF's size
// limits (1 MB, 3 MB with attachments; the configured limit, checked
// first, only lowers them). It returns the parsed invoice on success; any refusal is a
// *ValidationError carrying the first error found. KSeF's date and NIP rules
// are CheckIssueDate and CheckNIPs; CheckSemantics is not KSeF's.
func (v *Validator) Validate(ctx context.Context, data []byte) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if int64(len(data)) > v.maxSize {
		return nil, verr(KindTooLarge, 0, "document is %d bytes, the limit is %d", len(data), v.maxSize)
	}
	if ve := precheck(data); ve != nil {
		return nil, ve
	}
	if ve := checkDocumentRules(data); ve != nil {
		return nil, ve
	}
	v.mu.RLock()
	validated := v.schema != nil
	ve := xmlCheck(v.schema, data)
	v.mu.RUnlock()
	runtime.KeepAlive(v) // the cleanup must not free the schema mid-call
	if ve != nil {
		return nil, ve
	}
	if !validated {
		if ve := structuralCheck(data); ve != nil {
			return nil, ve
		}
	}
	inv, err := decode(data)
	if err != nil {
		return nil, err
	}
	if ve := checkSize(len(data), inv); ve != nil {
		return nil, ve
	}
	return &Result{Version: Version, SchemaValidated: validated, Invoice: inv}, nil
}

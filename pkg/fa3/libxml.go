package fa3

/*
#cgo pkg-config: libxml-2.0
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlschemas.h>
#include <libxml/c14n.h>

// fa3_err receives the first error of one operation. The error callbacks
// below are plain C functions writing into it, so no Go code runs inside
// libxml2 and no global error handler is touched.
typedef struct {
	int set;
	int line;
	char msg[1024];
	char root_ns[512];
	char root_name[128];
} fa3_err;

static void fa3_record(fa3_err *r, xmlErrorPtr e) {
	if (r == NULL || e == NULL || r->set || e->level < XML_ERR_ERROR) {
		return;
	}
	r->set = 1;
	r->line = e->line;
	const char *m = e->message != NULL ? e->message : "unknown error";
	strncpy(r->msg, m, sizeof r->msg - 1);
	r->msg[sizeof r->msg - 1] = 0;
}

static void fa3_set(fa3_err *r, const char *m) {
	if (r->set) {
		return;
	}
	r->set = 1;
	strncpy(r->msg, m, sizeof r->msg - 1);
	r->msg[sizeof r->msg - 1] = 0;
}

// Schema contexts pass the fa3_err given to xmlSchemaSet*StructuredErrors.
static void fa3_schema_error(void *ctx, xmlErrorPtr e) {
	fa3_record((fa3_err *)ctx, e);
}

// Parser errors carry their parser context (e->ctxt), whose _private field holds the fa3_err.
// ctx is ctxt->userData, which is not the parser context once a schema SAX plug is in.
static void fa3_parser_error(void *ctx, xmlErrorPtr e) {
	xmlParserCtxtPtr p = e != NULL ? (xmlParserCtxtPtr)e->ctxt : NULL;
	fa3_record(p != NULL ? (fa3_err *)p->_private : NULL, e);
}

// No network, no entity substitution, no DTD loading, no huge documents;
// big line numbers so that errors past line 65535 are reported right.
static const int fa3_parse_options = XML_PARSE_NONET | XML_PARSE_NOWARNING | XML_PARSE_BIG_LINES;

// fa3_parse parses buf into a document, or returns NULL with err set.
static xmlDocPtr fa3_parse(const char *buf, int len, fa3_err *err) {
	xmlParserCtxtPtr ctxt = xmlCreateMemoryParserCtxt(buf, len);
	if (ctxt == NULL) {
		fa3_set(err, "cannot create parser context");
		return NULL;
	}
	xmlCtxtUseOptions(ctxt, fa3_parse_options);
	ctxt->_private = err;
	if (ctxt->sax != NULL) {
		ctxt->sax->serror = fa3_parser_error;
	}
	xmlParseDocument(ctxt);
	xmlDocPtr doc = ctxt->myDoc;
	int ok = ctxt->wellFormed;
	ctxt->myDoc = NULL;
	ctxt->_private = NULL;
	if (!ok || doc == NULL) {
		fa3_set(err, "document is not well-formed");
		if (doc != NULL) {
			xmlFreeDoc(doc);
		}
		doc = NULL;
	}
	xmlFreeParserCtxt(ctxt);
	return doc;
}

enum { FA3_OK = 0, FA3_NOT_WELL_FORMED = 1, FA3_WRONG_ROOT = 2, FA3_INVALID = 3, FA3_INTERNAL = 4 };

// fa3_sax is the state of one SAX-plugged check: the SAX callbacks get it as their user data.
typedef struct {
	fa3_err *err;
	xmlParserCtxtPtr ctxt;
	const char *ns;
	int root, wrong_root, root_line;
} fa3_sax;

// fa3_sax_start records the root element, the first one the parser reports.
static void fa3_sax_start(void *ctx, const xmlChar *localname, const xmlChar *prefix,
		const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
		int nb_attributes, int nb_defaulted, const xmlChar **attributes) {
	fa3_sax *s = (fa3_sax *)ctx;
	if (s->root) {
		return;
	}
	s->root = 1;
	const char *rns = uri != NULL ? (const char *)uri : "";
	const char *name = localname != NULL ? (const char *)localname : "";
	if (strcmp(rns, s->ns) != 0 || strcmp(name, "Faktura") != 0) {
		s->wrong_root = 1;
		s->root_line = s->ctxt->input != NULL ? s->ctxt->input->line : 0;
		strncpy(s->err->root_ns, rns, sizeof s->err->root_ns - 1);
		strncpy(s->err->root_name, name, sizeof s->err->root_name - 1);
	}
}

// fa3_locator gives the schema validator the parser's line, as there is no tree to take it from.
static int fa3_locator(void *ctx, const char **file, unsigned long *line) {
	xmlParserCtxtPtr ctxt = (xmlParserCtxtPtr)ctx;
	if (file != NULL) {
		*file = NULL;
	}
	if (line != NULL) {
		*line = ctxt->input != NULL ? (unsigned long)ctxt->input->line : 0;
	}
	return 0;
}

// FA3_CHUNK is how much of the document the push parser is given at a time: libxml2 keeps only
// the part not parsed yet, where a pull parser would first copy the whole document.
enum { FA3_CHUNK = 16 << 10 };

// fa3_check parses buf with SAX callbacks only (no tree), checks that the root element is
// {ns}Faktura and, if schema is not NULL, validates the document against it while parsing
// (xmlSchemaSAXPlug), which costs about a third less CPU than a validating text reader. libxml2's
// memory stays small and flat: a document tree would cost about fifteen times the document.
// The outcome does not depend on where the errors are: a well-formedness error anywhere wins
// over a wrong root, which wins over a schema error (as when the whole document is parsed first).
static int fa3_check(xmlSchemaPtr schema, const char *buf, int len, const char *ns, fa3_err *err) {
	// Only the root element is of interest: no startDocument, so no tree; no entity callbacks
	// (documents with a DTD never get here, and predefined entities need none).
	xmlSAXHandler sax;
	memset(&sax, 0, sizeof sax);
	sax.initialized = XML_SAX2_MAGIC;
	sax.startElementNs = fa3_sax_start;
	sax.serror = fa3_parser_error;
	fa3_sax st = {err, NULL, ns, 0, 0, 0};
	int first = len < 4 ? len : 4; // enough to detect the encoding
	xmlParserCtxtPtr ctxt = xmlCreatePushParserCtxt(&sax, &st, buf, first, NULL); // copies sax
	if (ctxt == NULL) {
		fa3_set(err, "cannot create parser context");
		return FA3_INTERNAL;
	}
	st.ctxt = ctxt;
	ctxt->_private = err;
	xmlCtxtUseOptions(ctxt, fa3_parse_options);

	fa3_err serr;
	memset(&serr, 0, sizeof serr);
	xmlSchemaValidCtxtPtr vctxt = NULL;
	xmlSchemaSAXPlugPtr plug = NULL;
	int rc = FA3_OK, reparse = 0;
	if (schema != NULL) {
		vctxt = xmlSchemaNewValidCtxt(schema);
		if (vctxt == NULL) {
			fa3_set(err, "cannot create schema validation context");
			rc = FA3_INTERNAL;
			goto done;
		}
		xmlSchemaSetValidStructuredErrors(vctxt, fa3_schema_error, &serr);
		xmlSchemaValidateSetLocator(vctxt, fa3_locator, ctxt);
		plug = xmlSchemaSAXPlug(vctxt, &ctxt->sax, &ctxt->userData);
		if (plug == NULL) {
			fa3_set(err, "cannot start schema validation");
			rc = FA3_INTERNAL;
			goto done;
		}
		// The plug's handler passes our callbacks on but not serror: without it parser errors
		// would reach libxml2's global handler. Its reference callback would hand our state to
		// the validator as if it were the validator's; no reference event comes without a DTD,
		// but make sure.
		ctxt->sax->serror = fa3_parser_error;
		ctxt->sax->reference = NULL;
	}
	// After a fatal error xmlParseChunk returns at once, so the rest costs nothing.
	for (int off = first; off < len; off += FA3_CHUNK) {
		xmlParseChunk(ctxt, buf + off, len - off < FA3_CHUNK ? len - off : FA3_CHUNK, 0);
	}
	xmlParseChunk(ctxt, NULL, 0, 1);
	int valid = vctxt != NULL ? xmlSchemaIsValid(vctxt) : 1;
	reparse = err->set || !ctxt->wellFormed || !ctxt->nsWellFormed;
	if (reparse) {
		rc = FA3_NOT_WELL_FORMED;
	} else if (!st.root) {
		fa3_set(err, "document has no root element");
		rc = FA3_NOT_WELL_FORMED;
	} else if (st.wrong_root) {
		err->line = st.root_line;
		rc = FA3_WRONG_ROOT;
	} else if (serr.set || valid == 0) {
		if (serr.set) {
			*err = serr;
		}
		fa3_set(err, "document is not valid against the FA(3) schema");
		rc = FA3_INVALID;
	} else if (valid < 0) {
		fa3_set(err, "schema validation failed internally");
		rc = FA3_INTERNAL;
	}
done:
	if (plug != NULL) {
		xmlSchemaSAXUnplug(plug); // puts ctxt->sax (our copy) and ctxt->userData back
	}
	if (vctxt != NULL) {
		xmlSchemaFreeValidCtxt(vctxt);
	}
	ctxt->_private = NULL;
	xmlFreeParserCtxt(ctxt);
	if (reparse) {
		// The first error and its line, the way the whole document is parsed (as Canonical does):
		// the chunked parse can meet the same error elsewhere or put it differently.
		memset(err, 0, sizeof *err);
		xmlDocPtr doc = fa3_parse(buf, len, err);
		if (doc != NULL) {
			xmlFreeDoc(doc);
		}
		fa3_set(err, "document is not well-formed");
	}
	return rc;
}

// fa3_load_schema compiles the schema held in buf.
static xmlSchemaPtr fa3_load_schema(const char *buf, int len, fa3_err *err) {
	xmlSchemaParserCtxtPtr pctxt = xmlSchemaNewMemParserCtxt(buf, len);
	if (pctxt == NULL) {
		fa3_set(err, "cannot create schema parser context");
		return NULL;
	}
	xmlSchemaSetParserStructuredErrors(pctxt, fa3_schema_error, err);
	xmlSchemaPtr schema = xmlSchemaParse(pctxt);
	xmlSchemaFreeParserCtxt(pctxt);
	if (schema == NULL) {
		fa3_set(err, "cannot compile the schema");
	}
	return schema;
}

// fa3_c14n writes the exclusive canonical form (without comments) of buf
// to *out, returning its length or -1 with err set.
static int fa3_c14n(const char *buf, int len, xmlChar **out, fa3_err *err) {
	xmlDocPtr doc = fa3_parse(buf, len, err);
	if (doc == NULL) {
		return -1;
	}
	int n = xmlC14NDocDumpMemory(doc, NULL, XML_C14N_EXCLUSIVE_1_0, NULL, 0, out);
	xmlFreeDoc(doc);
	if (n < 0) {
		fa3_set(err, "canonicalization failed");
	}
	return n;
}

static void fa3_free(void *p) {
	xmlFree(p);
}
*/
import "C"

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
	"unsafe"
)

// versionDecl matches the version pseudo-attribute of the XML declaration.
var versionDecl = regexp.MustCompile(`^\s*<\?xml\s+version\s*=\s*["']([^"']*)["']`)

// initOnce runs xmlInitParser once, before any concurrent use of libxml2, as
// its documentation requires for multi-threaded programs.
var initOnce sync.Once

func initLibxml() { initOnce.Do(func() { C.xmlInitParser() }) }

// cErr converts the C error record into its message and line.
func cErr(e *C.fa3_err) (string, int) {
	msg := strings.TrimSpace(C.GoString(&e.msg[0]))
	return msg, int(e.line)
}

// bytesPtr returns a C view of data, which must be non-empty. libxml2 only
// reads it during the call and keeps no reference.
func bytesPtr(data []byte) *C.char { return (*C.char)(unsafe.Pointer(&data[0])) }

// xmlCheck parses data with libxml2, checks the root element and, with a
// non-nil schema, validates. data must have passed precheck.
func xmlCheck(schema *C.xmlSchema, data []byte) *ValidationError {
	if m := versionDecl.FindSubmatch(bytes.TrimPrefix(data, utf8BOM)); m != nil && string(m[1]) != "1.0" {
		// encoding/xml refuses them too; libxml2's streaming validator only half supports them.
		return verr(KindNotWellFormed, 1, "unsupported XML version %q: FA(3) documents are XML 1.0", m[1])
	}
	initLibxml()
	var e C.fa3_err
	ns := C.CString(Namespace)
	defer C.free(unsafe.Pointer(ns))
	rc := C.fa3_check(schema, bytesPtr(data), C.int(len(data)), ns, &e)
	msg, line := cErr(&e)
	switch rc {
	case C.FA3_OK:
		return nil
	case C.FA3_NOT_WELL_FORMED:
		return &ValidationError{Kind: KindNotWellFormed, Line: line, Message: msg}
	case C.FA3_WRONG_ROOT:
		ve := checkRoot(C.GoString(&e.root_ns[0]), C.GoString(&e.root_name[0]))
		if ve == nil { // cannot happen: C and Go agree on the rule
			ve = verr(KindNotFA3, 0, "root element is not an FA(3) Faktura")
		}
		ve.Line = line
		return ve
	case C.FA3_INVALID:
		// libxml2 qualifies every element name with the namespace; drop
		// the FA(3) one, which is implied, to keep messages readable.
		msg = strings.ReplaceAll(msg, "{"+Namespace+"}", "")
		return &ValidationError{Kind: KindSchema, Line: line, Message: msg}
	default:
		return &ValidationError{Kind: KindSchema, Line: line, Message: "internal validation error: " + msg}
	}
}

// loadSchema compiles an XSD held in memory.
func loadSchema(xsd []byte) (*C.xmlSchema, error) {
	initLibxml()
	var e C.fa3_err
	s := C.fa3_load_schema(bytesPtr(xsd), C.int(len(xsd)), &e)
	if s == nil {
		msg, line := cErr(&e)
		return nil, &ValidationError{Kind: KindSchema, Line: line, Message: "loading schema: " + msg}
	}
	return s, nil
}

func freeSchema(s *C.xmlSchema) { C.xmlSchemaFree(s) }

// c14n returns the exclusive canonical form of data (prechecked).
func c14n(data []byte) ([]byte, error) {
	initLibxml()
	var e C.fa3_err
	var out *C.xmlChar
	n := C.fa3_c14n(bytesPtr(data), C.int(len(data)), &out, &e)
	if n < 0 {
		msg, line := cErr(&e)
		return nil, &ValidationError{Kind: KindNotWellFormed, Line: line, Message: msg}
	}
	defer C.fa3_free(unsafe.Pointer(out))
	return C.GoBytes(unsafe.Pointer(out), n), nil
}

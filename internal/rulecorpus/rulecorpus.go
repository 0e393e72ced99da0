// Package rulecorpus builds, from valid FA(3) invoices, the corpus of KSeF's published
// verification rules (official/faktury/weryfikacja-faktury.md): for each rule, mutations that KSeF
// refuses and their nearest neighbours that KSeF takes. The emulator's and the sender's tests run
// every case; docs/ksef-rules.md lists the rules, their status codes and the tests.
//
// The corpus is built from whatever invoices it is given (the tests give it
// ../shared/ksef/samples/valid), so no rule is fitted to one sample set. A mutation that does not
// apply to an invoice (no second invoice line, no attachment) is skipped for it.
package rulecorpus

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Rules, as docs/ksef-rules.md names them.
const (
	RuleAsPublished = "as-published" // a valid invoice is accepted (control)
	RuleBOM         = "utf8-no-bom"
	RuleEncoding    = "prolog-encoding"
	RuleXMLVersion  = "xml-1.0"
	RulePI          = "no-processing-instructions"
	RuleChars       = "no-discouraged-characters"
	RuleSchema      = "schema"
	RuleIssueDate   = "p1-not-after-acceptance"
	RuleDuplicate   = "duplicate"
	RuleSize        = "size"
	RuleAttachment  = "attachments-batch-only"
	RuleNotKSeF     = "not-a-ksef-rule" // arithmetic KSeF does not check: accepted, with warnings
	RuleNIP         = "nip-checksum"
)

// Statuses KSeF gives (the seed's invoice status codes).
const (
	Accepted   = 200
	Permission = 410
	Attachment = 415
	Invalid    = 430
	Duplicate  = 440
	Semantic   = 450
)

// Environments a case applies to.
const (
	EnvAny  = ""
	EnvProd = "prod" // production only (NIP check digits are checked there)
	EnvTest = "test" // anywhere but production
)

// Case is one invoice of the corpus and the outcome KSeF gives it.
type Case struct {
	Name   string // rule/sample/mutation
	Rule   string
	XML    []byte
	Seller string // the seller's NIP: the context to send it in
	// Prior, when set, is sent first and must be accepted before XML is sent (a duplicate).
	Prior []byte
	// Batch: send it in a batch session (invoices with attachments); else online.
	Batch bool
	// Attachments: the invoice has attachments (Zalacznik), which KSeF takes only in batches.
	Attachments bool
	Env         string
	// Status is what KSeF answers: Accepted or the status code of the refusal.
	Status int
	// Local: a client can decide the case before sending (XML rules, schema, size, date, NIPs).
	// A duplicate needs KSeF's records; an attachment sent online is the sender's to route to a
	// batch session instead. The sender refuses exactly the Local cases KSeF refuses.
	Local bool
	// Warns: the invoice breaks arithmetic KSeF does not check; the sender reports warnings.
	Warns bool
}

// Sample is a valid invoice the corpus is built from.
type Sample struct {
	Name string
	XML  []byte
}

// Load reads the *.xml files of dir.
func Load(dir string) ([]Sample, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.xml"))
	if err != nil {
		return nil, fmt.Errorf("rulecorpus: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("rulecorpus: no invoices in %s", dir)
	}
	var out []Sample
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("rulecorpus: %w", err)
		}
		out = append(out, Sample{Name: filepath.Base(f), XML: b})
	}
	return out, nil
}

// The discouraged ranges of the list, and characters just outside them.
var (
	discouraged = [][2]rune{{0x7F, 0x84}, {0x86, 0x9F}, {0xFDD0, 0xFDEF}}
	neighbours  = []rune{0x7E, 0x85, 0xA0, 0xFDCF, 0xFDF0, 0x1FFFD, 0x20000, 0x10FFFD, 'ż'}
)

func init() {
	for plane := rune(1); plane <= 16; plane++ {
		discouraged = append(discouraged, [2]rune{plane<<16 | 0xFFFE, plane<<16 | 0xFFFF})
	}
}

// Limits of the rule list, in bytes.
const (
	maxSize            = 1_000_000
	maxSizeAttachments = 3_000_000
)

var warsaw = mustZone("Europe/Warsaw")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// Build returns the corpus for invoices accepted on the day of now (in Poland): P_1 rules are
// relative to it. Every case has an invoice number (P_2) of its own, so that cases do not
// collide as duplicates. An invoice Build cannot read (no seller NIP, no P_2) is an error.
func Build(samples []Sample, now time.Time) ([]Case, error) {
	b := &builder{today: now.In(warsaw)}
	for _, s := range samples {
		if err := b.sample(s); err != nil {
			return nil, fmt.Errorf("rulecorpus: %s: %w", s.Name, err)
		}
	}
	return b.cases, nil
}

type builder struct {
	today      time.Time
	cases      []Case
	n          int
	sizedPlain bool // the size cases of an invoice without attachments are built once
}

func (b *builder) add(c Case, s Sample, what string) {
	if bytes.Equal(c.XML, s.XML) && c.Status != Accepted && c.Rule != RuleAttachment && c.Rule != RuleSize {
		return // the mutation does not apply to this invoice (no such element)
	}
	b.n++
	c.Name = c.Rule + "/" + strings.TrimSuffix(s.Name, ".xml") + "/" + what
	c.XML = setText(c.XML, "P_2", fmt.Sprintf("RC-%d", b.n))
	if c.Prior != nil {
		c.Prior = setText(c.Prior, "P_2", fmt.Sprintf("RC-%d", b.n))
	}
	b.cases = append(b.cases, c)
}

func (b *builder) sample(s Sample) error {
	seller := sellerNIP(s.XML)
	if seller == "" {
		return fmt.Errorf("no seller NIP (Podmiot1/DaneIdentyfikacyjne/NIP)")
	}
	if _, ok := text(s.XML, "P_2"); !ok {
		return fmt.Errorf("no P_2")
	}
	x := s.XML
	attach := hasElement(x, "Zalacznik")
	c := func(rule string, xml []byte, status int) Case {
		return Case{Rule: rule, XML: xml, Seller: seller, Batch: attach, Attachments: attach, Status: status, Local: true}
	}
	b.add(c(RuleAsPublished, x, Accepted), s, "unchanged")

	// XML 1.0, UTF-8 without a BOM, a prolog naming no other encoding.
	body := withoutDecl(x)
	b.add(c(RuleBOM, append([]byte("\xEF\xBB\xBF"), x...), Invalid), s, "bom")
	b.add(c(RuleBOM, append([]byte("\xEF\xBB\xBF"), body...), Invalid), s, "bom-without-prolog")
	b.add(c(RuleBOM, body, Accepted), s, "no-prolog")
	for _, enc := range []struct {
		name, decl string
		status     int
	}{
		{"windows-1250", `<?xml version="1.0" encoding="windows-1250"?>`, Invalid},
		{"ISO-8859-2", `<?xml version="1.0" encoding="ISO-8859-2"?>`, Invalid},
		{"UTF-16", `<?xml version="1.0" encoding="UTF-16"?>`, Invalid},
		{"utf-8", `<?xml version="1.0" encoding="utf-8"?>`, Accepted},
		{"UTF-8", `<?xml version="1.0" encoding="UTF-8"?>`, Accepted},
		{"Utf-8-single-quotes", `<?xml version='1.0' encoding='Utf-8'?>`, Accepted},
		{"no-encoding", `<?xml version="1.0"?>`, Accepted},
		{"standalone", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>`, Accepted},
	} {
		b.add(c(RuleEncoding, append([]byte(enc.decl+"\n"), body...), enc.status), s, enc.name)
	}
	b.add(c(RuleXMLVersion, append([]byte(`<?xml version="1.1" encoding="UTF-8"?>`+"\n"), body...), Invalid), s, "version-1.1")

	// No processing instructions, wherever they are.
	decl := []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	pi := []byte(`<?xml-stylesheet type="text/xsl" href="faktura.xsl"?>`)
	comment := []byte(`<!-- xml-stylesheet type="text/xsl" href="faktura.xsl" -->`)
	b.add(c(RulePI, concat(decl, pi, []byte("\n"), body), Invalid), s, "after-prolog")
	b.add(c(RulePI, concat(pi, []byte("\n"), body), Invalid), s, "without-prolog")
	b.add(c(RulePI, concat(decl, body, []byte("\n"), pi, []byte("\n")), Invalid), s, "after-root")
	b.add(c(RulePI, insertAfterStart(x, "Naglowek", []byte(`<?ksef ok?>`)), Invalid), s, "inside-root")
	b.add(c(RulePI, concat(decl, comment, []byte("\n"), body), Accepted), s, "comment-instead")
	b.add(c(RulePI, insertAfterStart(x, "Nazwa", []byte(`<![CDATA[<?ksef?> ]]>`)), Accepted), s, "pi-text-in-cdata")

	// No discouraged characters of the listed ranges.
	for _, r := range discouraged {
		for _, ch := range []rune{r[0], r[1]} {
			b.add(c(RuleChars, insertAfterStart(x, "Nazwa", []byte(string(ch))), Invalid), s, fmt.Sprintf("U+%04X", ch))
		}
	}
	b.add(c(RuleChars, insertAfterStart(x, "Nazwa", []byte("&#x86;")), Invalid), s, "reference-&#x86;")
	b.add(c(RuleChars, insertAfterStart(x, "Nazwa", []byte("&#64976;")), Invalid), s, "reference-&#64976;")
	for _, ch := range neighbours {
		b.add(c(RuleChars, insertAfterStart(x, "Nazwa", []byte(string(ch))), Accepted), s, fmt.Sprintf("U+%04X", ch))
	}

	// The schema declared at session open.
	b.add(c(RuleSchema, bytes.Replace(x, []byte("<P_2>"), []byte("<P_2X>"), 1), Invalid), s, "unknown-element")

	// P_1 not after the day of acceptance.
	day := b.today.Format("2006-01-02")
	b.add(c(RuleIssueDate, setText(x, "P_1", b.today.AddDate(0, 0, 1).Format("2006-01-02")), Semantic), s, "tomorrow")
	b.add(c(RuleIssueDate, setText(x, "P_1", b.today.AddDate(1, 0, 0).Format("2006-01-02")), Semantic), s, "next-year")
	b.add(c(RuleIssueDate, setText(x, "P_1", day), Accepted), s, "today")
	b.add(c(RuleIssueDate, setText(x, "P_1", b.today.AddDate(0, 0, -1).Format("2006-01-02")), Accepted), s, "yesterday")

	// Seller NIP + RodzajFaktury + P_2 are unique: the same key with other content is a duplicate.
	dup := c(RuleDuplicate, insertAfterStart(x, "Nazwa", []byte("Nowa ")), Duplicate)
	dup.Prior, dup.Local = x, false
	b.add(dup, s, "same-key-other-content")
	b.add(c(RuleDuplicate, insertAfterStart(x, "Nazwa", []byte("Nowa ")), Accepted), s, "other-number")

	// Attachments only in batch sessions.
	if attach {
		online := c(RuleAttachment, x, Attachment)
		online.Batch, online.Local = false, false
		b.add(online, s, "online")
		b.add(c(RuleAttachment, x, Accepted), s, "batch")
	}

	// Sizes: 1 MB, 3 MB with attachments (once for invoices without, for each with).
	if attach || !b.sizedPlain {
		limit := maxSize
		if attach {
			limit = maxSizeAttachments
		} else {
			b.sizedPlain = true
		}
		for _, tc := range []struct {
			size   int
			status int
		}{{limit, Accepted}, {limit + 1, Invalid}} {
			b.add(c(RuleSize, x, tc.status), s, strconv.Itoa(tc.size)+"-bytes")
			last := &b.cases[len(b.cases)-1] // padded once add has set its P_2
			last.XML = padTo(last.XML, tc.size)
		}
	}

	// Arithmetic KSeF does not check: accepted, the sender warns.
	if _, ok := text(x, "P_15"); ok {
		w := c(RuleNotKSeF, setText(x, "P_15", "999999.99"), Accepted)
		// Only invoices with per-rate totals have totals to add up.
		w.Warns = regexp.MustCompile(`<(?:[\w.-]+:)?P_13_\d`).Match(x)
		b.add(w, s, "totals-do-not-add-up")
	}
	if lines := elements(x, "NrWierszaFa"); lines >= 2 {
		w := c(RuleNotKSeF, setNth(x, "NrWierszaFa", 1, "1"), Accepted)
		w.Warns = true
		b.add(w, s, "repeated-line-number")
	}

	// NIP check digits, on production only; the base has every NIP corrected.
	base, sellerFixed := validNIPs(x)
	nip := func(rule string, xml []byte, env string, status int, what string) {
		cs := c(rule, xml, status)
		cs.Env, cs.Seller = env, sellerFixed
		b.add(cs, s, what)
	}
	nip(RuleNIP, base, EnvProd, Accepted, "all-valid")
	for _, party := range []string{"Podmiot1", "Podmiot2", "Podmiot3", "PodmiotUpowazniony"} {
		bad, ok := breakNIPIn(base, party, "NIP")
		if !ok {
			continue
		}
		seller := sellerFixed
		if party == "Podmiot1" {
			seller = sellerNIP(bad)
		}
		for _, env := range []struct {
			env    string
			status int
		}{{EnvProd, Semantic}, {EnvTest, Accepted}} {
			cs := c(RuleNIP, bad, env.status)
			cs.Env, cs.Seller = env.env, seller
			b.add(cs, s, party+"-"+env.env)
		}
	}
	if bad, ok := breakNIPIn(base, "Podmiot3", "IDWew"); ok {
		nip(RuleNIP, bad, EnvProd, Semantic, "IDWew-prod")
		nip(RuleNIP, bad, EnvTest, Accepted, "IDWew-test")
	}
	return nil
}

// elementRe matches an element's start tag (any namespace prefix), text and end tag.
func elementRe(name string) *regexp.Regexp {
	return regexp.MustCompile(`<((?:[\w.-]+:)?)` + name + `>([^<]*)</(?:[\w.-]+:)?` + name + `>`)
}

func text(x []byte, name string) (string, bool) {
	m := elementRe(name).FindSubmatch(x)
	if m == nil {
		return "", false
	}
	return string(m[2]), true
}

func hasElement(x []byte, name string) bool {
	return regexp.MustCompile(`<(?:[\w.-]+:)?` + name + `[\s>]`).Match(x)
}

func elements(x []byte, name string) int { return len(elementRe(name).FindAllIndex(x, -1)) }

// setText replaces the text of the first element called name.
func setText(x []byte, name, value string) []byte { return setNth(x, name, 0, value) }

// setNth replaces the text of the n-th (0-based) element called name.
func setNth(x []byte, name string, n int, value string) []byte {
	re := elementRe(name)
	locs := re.FindAllSubmatchIndex(x, n+1)
	if len(locs) <= n {
		return x
	}
	l := locs[n]
	return concat(x[:l[4]], []byte(value), x[l[5]:])
}

// insertAfterStart inserts ins right after the first start tag of name.
func insertAfterStart(x []byte, name string, ins []byte) []byte {
	loc := regexp.MustCompile(`<(?:[\w.-]+:)?` + name + `>`).FindIndex(x)
	if loc == nil {
		return x
	}
	return concat(x[:loc[1]], ins, x[loc[1]:])
}

// withoutDecl is x without its XML declaration.
func withoutDecl(x []byte) []byte {
	if !bytes.HasPrefix(x, []byte("<?xml")) {
		return x
	}
	end := bytes.Index(x, []byte("?>"))
	if end < 0 {
		return x
	}
	return bytes.TrimLeft(x[end+2:], " \t\r\n")
}

// padTo appends a comment after the root element so that x is size bytes long.
func padTo(x []byte, size int) []byte {
	x = bytes.TrimRight(x, " \t\r\n")
	room := size - len(x) - len("\n<!---->")
	if room < 0 {
		return x
	}
	return concat(x, []byte("\n<!--"), bytes.Repeat([]byte("x"), room), []byte("-->"))
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// sellerNIP is the NIP in Podmiot1.
func sellerNIP(x []byte) string {
	i := regexp.MustCompile(`<(?:[\w.-]+:)?Podmiot1>`).FindIndex(x)
	if i == nil {
		return ""
	}
	nip, _ := text(x[i[1]:], "NIP")
	return nip
}

var nipWeights = [9]int{6, 5, 7, 2, 3, 4, 5, 6, 7}

// checkDigit is the NIP check digit of the first nine digits of d, -1 when there is none.
func checkDigit(d string) int {
	sum := 0
	for i := range 9 {
		sum += int(d[i]-'0') * nipWeights[i]
	}
	if sum%11 == 10 {
		return -1
	}
	return sum % 11
}

// fixNIP gives a ten-digit number a correct check digit (changing the ninth digit when no check
// digit fits).
func fixNIP(n string) string {
	if len(n) != 10 {
		return n
	}
	d := []byte(n)
	for range 10 {
		if cd := checkDigit(string(d)); cd >= 0 {
			d[9] = byte('0' + cd)
			return string(d)
		}
		d[8] = '0' + (d[8]-'0'+1)%10
	}
	return n
}

// breakNIP gives a valid NIP a wrong check digit.
func breakNIP(n string) string {
	d := []byte(n)
	d[9] = '0' + (d[9]-'0'+1)%10
	return string(d)
}

var (
	nipRe   = regexp.MustCompile(`(<(?:[\w.-]+:)?NIP>)(\d{10})(</)`)
	idWewRe = regexp.MustCompile(`(<(?:[\w.-]+:)?IDWew>)(\d{10})(-\d+</)`)
)

// validNIPs corrects the check digit of every NIP and internal identifier of x, returning it and
// the seller's NIP.
func validNIPs(x []byte) ([]byte, string) {
	fix := func(re *regexp.Regexp, x []byte) []byte {
		return re.ReplaceAllFunc(x, func(m []byte) []byte {
			p := re.FindSubmatch(m)
			return concat(p[1], []byte(fixNIP(string(p[2]))), p[3])
		})
	}
	out := fix(idWewRe, fix(nipRe, x))
	return out, sellerNIP(out)
}

// breakNIPIn breaks the check digit of the first field (NIP or IDWew) inside the first element
// called party.
func breakNIPIn(x []byte, party, field string) ([]byte, bool) {
	start := regexp.MustCompile(`<(?:[\w.-]+:)?` + party + `>`).FindIndex(x)
	if start == nil {
		return nil, false
	}
	re := nipRe
	if field == "IDWew" {
		re = idWewRe
	}
	end := regexp.MustCompile(`</(?:[\w.-]+:)?` + party + `>`).FindIndex(x[start[1]:])
	if end == nil {
		return nil, false
	}
	scope := x[start[1] : start[1]+end[0]]
	m := re.FindSubmatchIndex(scope)
	if m == nil {
		return nil, false
	}
	at := start[1]
	return concat(x[:at+m[4]], []byte(breakNIP(string(scope[m[4]:m[5]]))), x[at+m[5]:]), true
}

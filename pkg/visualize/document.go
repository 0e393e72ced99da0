package visualize

import (
	"strconv"
	"strings"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
)

// document is the format-neutral visualization of one invoice: every label
// translated and every value formatted. The PDF and HTML renderers only lay
// it out, which keeps their content identical.
type document struct {
	Lang        Language
	HTMLLang    string
	Brand       string
	Title       string
	NumberLabel string
	Number      string
	KSeFLabel   string
	KSeFNumber  string
	Notice      string
	Sections    []section
	QR          []qrCode
	GeneratedIn string // footer: "Wytworzona w: <SystemInfo>"
	Created     time.Time
}

// section is a titled part of the invoice ("Pozycje", "Płatność", ...).
type section struct {
	Title  string
	Blocks []block
}

// block is one piece of a section. Any combination of the parts may be set;
// they are laid out in the order Title, Heading, Fields, Text, Table,
// Columns, Total.
type block struct {
	Title   string // a party's heading, e.g. "Sprzedawca"
	Heading string // a sub-heading inside a section
	Fields  []field
	Text    []string
	Table   *table
	Columns [][]block // laid out side by side
	Total   *field    // an emphasised amount, right-aligned
}

// field is "Label: value"; a value may span several lines ("\n").
type field struct{ Label, Value string }

type table struct {
	Cols []column
	Rows []row
}

type column struct {
	Title string
	Align string // "L", "R" or "C"
	Flex  bool   // takes the width left over by the other columns
}

// row is a table row; each cell is a list of lines, the first the main text
// and the rest secondary details (codes, "before correction").
type row struct {
	Cells [][]string
	Muted bool // a "state before correction" line
}

// qrCode is one verification code with its link and the label under it.
type qrCode struct {
	Title   string
	Hint    string
	URL     string
	Label   string
	Modules [][]bool // true = dark, without the quiet zone
}

func (b block) empty() bool {
	return b.Title == "" && b.Heading == "" && len(b.Fields) == 0 && len(b.Text) == 0 &&
		b.Table == nil && len(b.Columns) == 0 && b.Total == nil
}

// builder turns an fa3.Invoice into a document.
type builder struct {
	l   Language
	inv *fa3.Invoice
	fa  *fa3.Fa
}

func buildDocument(inv *fa3.Invoice, raw []byte, opts Options) (*document, error) {
	b := &builder{l: opts.Language, inv: inv, fa: &inv.Fa}
	l := b.l
	d := &document{
		Lang:        l,
		HTMLLang:    "pl",
		Brand:       l.tr(lblKSeFSystem),
		Title:       l.tr(invoiceTitles[inv.Fa.RodzajFaktury]),
		NumberLabel: l.tr(lblInvoiceNo),
		Number:      strings.TrimSpace(inv.Fa.P_2),
		KSeFLabel:   l.tr(lblKSeFNo),
		KSeFNumber:  strings.TrimSpace(opts.KsefNumber),
		Created:     creationTime(inv.Naglowek.DataWytworzeniaFa, inv.Fa.P_1),
	}
	if l == LangEN {
		d.HTMLLang = "en"
	}
	if d.KSeFNumber == "" {
		d.KSeFNumber = l.tr(lblNoKSeFNo)
	}
	if opts.Offline {
		d.Notice = l.tr(lblOffline)
	}
	if si := strings.TrimSpace(inv.Naglowek.SystemInfo); si != "" {
		d.GeneratedIn = l.tr(lblGeneratedIn) + ": " + si
	}
	for _, s := range []section{
		b.parties(),
		b.thirdParties(),
		b.details(),
		b.correction(),
		b.advances(),
		b.lines(),
		b.vatSummary(),
		b.annotations(),
		b.additional(),
		b.order(),
		b.settlement(),
		b.payment(),
		b.terms(),
		b.footer(),
		b.attachment(),
	} {
		if len(s.Blocks) > 0 {
			d.Sections = append(d.Sections, s)
		}
	}
	qrs, err := b.qrCodes(raw, opts)
	if err != nil {
		return nil, err
	}
	d.QR = qrs
	return d, nil
}

// add appends f when it has a value.
func add(fs []field, label text, l Language, value string) []field {
	if v := strings.TrimSpace(value); v != "" {
		return append(fs, field{Label: l.tr(label), Value: v})
	}
	return fs
}

func (b *builder) address(a *fa3.Adres) string {
	if a == nil {
		return ""
	}
	country := strings.TrimSpace(a.KodKraju)
	if country == "PL" {
		country = b.l.tr(lblPoland)
	}
	var lines []string
	for _, s := range []string{a.AdresL1, a.AdresL2, country} {
		if s = strings.TrimSpace(s); s != "" {
			lines = append(lines, s)
		}
	}
	if g := strings.TrimSpace(a.GLN); g != "" {
		lines = append(lines, b.l.tr(lblGLN)+": "+g)
	}
	return strings.Join(lines, "\n")
}

// identity lists how a party is identified: NIP, EU VAT number, a foreign
// tax id, an internal id, or the explicit "no identifier".
func (b *builder) identity(id fa3.DaneIdentyfikacyjne, prefix string) []field {
	l := b.l
	var fs []field
	if id.NIP != "" {
		nip := strings.TrimSpace(id.NIP)
		if p := strings.TrimSpace(prefix); p != "" {
			nip = p + nip
		}
		fs = add(fs, lblNIP, l, nip)
	}
	fs = add(fs, lblInternalID, l, id.IDWew)
	if id.NrVatUE != "" {
		fs = add(fs, lblEUVAT, l, strings.TrimSpace(id.KodUE)+strings.TrimSpace(id.NrVatUE))
	}
	if id.NrID != "" {
		v := strings.TrimSpace(id.NrID)
		if k := strings.TrimSpace(id.KodKraju); k != "" {
			v = k + " " + v
		}
		fs = add(fs, lblTaxID, l, v)
	}
	if id.BrakID == "1" {
		fs = append(fs, field{Label: l.tr(lblNoID)})
	}
	fs = add(fs, lblName, l, id.Nazwa)
	return fs
}

func (b *builder) contacts(fs []field, cs []fa3.DaneKontaktowe) []field {
	for _, c := range cs {
		fs = add(fs, lblEmail, b.l, c.Email)
		fs = add(fs, lblPhone, b.l, c.Telefon)
	}
	return fs
}

func (b *builder) parties() section {
	l := b.l
	p1, p2 := b.inv.Podmiot1, b.inv.Podmiot2

	seller := b.identity(p1.DaneIdentyfikacyjne, p1.PrefiksPodatnika)
	seller = add(seller, lblEORI, l, p1.NrEORI)
	seller = add(seller, lblAddress, l, b.address(&p1.Adres))
	seller = add(seller, lblCorrAddress, l, b.address(p1.AdresKoresp))
	seller = b.contacts(seller, p1.DaneKontaktowe)
	seller = add(seller, lblStatus, l, l.codeOpt(taxpayerStatuses, p1.StatusInfoPodatnika))

	buyer := b.identity(p2.DaneIdentyfikacyjne, "")
	buyer = add(buyer, lblEORI, l, p2.NrEORI)
	buyer = add(buyer, lblAddress, l, b.address(p2.Adres))
	buyer = add(buyer, lblCorrAddress, l, b.address(p2.AdresKoresp))
	buyer = b.contacts(buyer, p2.DaneKontaktowe)
	buyer = add(buyer, lblCustomerNo, l, p2.NrKlienta)
	buyer = add(buyer, lblBuyerID, l, p2.IDNabywcy)
	if p2.JST == "1" {
		buyer = add(buyer, lblJST, l, l.tr(lblYes))
	}
	if p2.GV == "1" {
		buyer = add(buyer, lblGV, l, l.tr(lblYes))
	}
	return section{Blocks: []block{{Columns: [][]block{
		{{Title: l.tr(lblSeller), Fields: seller}},
		{{Title: l.tr(lblBuyer), Fields: buyer}},
	}}}}
}

// codeOpt is code for an optional value: empty stays empty.
func (l Language) codeOpt(list map[string]text, v string) string {
	if v = strings.TrimSpace(v); v == "" {
		return ""
	}
	return l.code(list, v)
}

func (b *builder) thirdParties() section {
	l := b.l
	var parties []block
	for _, p := range b.inv.Podmiot3 {
		title := l.tr(lblThirdParties)
		switch {
		case p.Rola != "":
			title = l.code(thirdPartyRoles, strings.TrimSpace(p.Rola))
		case strings.TrimSpace(p.OpisRoli) != "":
			title = strings.TrimSpace(p.OpisRoli)
		}
		fs := b.identity(p.DaneIdentyfikacyjne, "")
		fs = add(fs, lblEORI, l, p.NrEORI)
		fs = add(fs, lblAddress, l, b.address(p.Adres))
		fs = add(fs, lblCorrAddress, l, b.address(p.AdresKoresp))
		fs = b.contacts(fs, p.DaneKontaktowe)
		fs = add(fs, lblShare, l, pct(p.Udzial))
		fs = add(fs, lblCustomerNo, l, p.NrKlienta)
		fs = add(fs, lblBuyerID, l, p.IDNabywcy)
		parties = append(parties, block{Title: title, Fields: fs})
	}
	if pu := b.inv.PodmiotUpowazniony; pu != nil {
		fs := b.identity(pu.DaneIdentyfikacyjne, "")
		fs = add(fs, lblRole, l, l.codeOpt(authorizedRoles, pu.RolaPU))
		fs = add(fs, lblEORI, l, pu.NrEORI)
		fs = add(fs, lblAddress, l, b.address(&pu.Adres))
		fs = add(fs, lblCorrAddress, l, b.address(pu.AdresKoresp))
		for _, c := range pu.DaneKontaktowe {
			fs = add(fs, lblEmail, l, c.EmailPU)
			fs = add(fs, lblPhone, l, c.TelefonPU)
		}
		parties = append(parties, block{Title: l.tr(lblAuthorized), Fields: fs})
	}
	s := section{Title: l.tr(lblThirdParties)}
	for i := 0; i < len(parties); i += 2 {
		cols := [][]block{{parties[i]}}
		if i+1 < len(parties) {
			cols = append(cols, []block{parties[i+1]})
		}
		s.Blocks = append(s.Blocks, block{Columns: cols})
	}
	return s
}

func pct(s string) string {
	if s = strings.TrimSpace(s); s == "" {
		return ""
	}
	return s + "%"
}

func (b *builder) details() section {
	l, fa := b.l, b.fa
	var fs []field
	fs = add(fs, lblIssueDate, l, l.date(fa.P_1))
	fs = add(fs, lblIssuePlace, l, fa.P_1M)
	fs = add(fs, lblSupplyDate, l, l.date(fa.P_6))
	if o := fa.OkresFa; o != nil {
		fs = add(fs, lblPeriod, l, l.trf(lblPeriodFmt, l.date(o.P_6_Od), l.date(o.P_6_Do)))
	}
	fs = add(fs, lblCurrency, l, fa.KodWaluty)
	fs = add(fs, lblFxRateZ, l, l.quantity(fa.KursWalutyZ))
	fs = add(fs, lblWZ, l, strings.Join(trimAll(fa.WZ), ", "))
	if fa.FP == "1" {
		fs = add(fs, lblFP, l, l.tr(lblYes))
	}
	if fa.TP == "1" {
		fs = add(fs, lblTP, l, l.tr(lblYes))
	}
	if fa.ZwrotAkcyzy == "1" {
		fs = add(fs, lblExciseRef, l, l.tr(lblYes))
	}
	fs = add(fs, lblCreatedAt, l, l.dateTime(b.inv.Naglowek.DataWytworzeniaFa))
	s := section{Title: l.tr(lblDetails)}
	if len(fs) > 0 {
		s.Blocks = []block{{Fields: fs}}
	}
	return s
}

func trimAll(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (b *builder) correction() section {
	l, fa := b.l, b.fa
	s := section{Title: l.tr(lblCorrection)}
	var fs []field
	fs = add(fs, lblCorrReason, l, fa.PrzyczynaKorekty)
	fs = add(fs, lblCorrType, l, l.codeOpt(correctionTypes, fa.TypKorekty))
	fs = add(fs, lblCorrPeriod, l, fa.OkresFaKorygowanej)
	fs = add(fs, lblCorrectedNumber, l, fa.NrFaKorygowany)
	fs = add(fs, lblP15ZK, l, l.amount(fa.P_15ZK))
	fs = add(fs, lblFxRateZK, l, l.quantity(fa.KursWalutyZK))
	if len(fs) > 0 {
		s.Blocks = append(s.Blocks, block{Fields: fs})
	}
	if len(fa.DaneFaKorygowanej) > 0 {
		t := &table{Cols: []column{
			{Title: l.tr(colNo), Align: "C"},
			{Title: l.tr(lblCorrNo), Align: "L", Flex: true},
			{Title: l.tr(lblCorrDate), Align: "C"},
			{Title: l.tr(lblCorrKSeF), Align: "L", Flex: true},
		}}
		for i, k := range fa.DaneFaKorygowanej {
			ksef := strings.TrimSpace(k.NrKSeFFaKorygowanej)
			if ksef == "" {
				ksef = l.tr(lblOutsideKSeF)
			}
			t.Rows = append(t.Rows, row{Cells: [][]string{
				{strconv.Itoa(i + 1)}, {strings.TrimSpace(k.NrFaKorygowanej)}, {l.date(k.DataWystFaKorygowanej)}, {ksef},
			}})
		}
		s.Blocks = append(s.Blocks, block{Table: t})
	}
	var cols [][]block
	if p := fa.Podmiot1K; p != nil {
		f := b.identity(p.DaneIdentyfikacyjne, p.PrefiksPodatnika)
		f = add(f, lblAddress, l, b.address(&p.Adres))
		cols = append(cols, []block{{Title: l.tr(lblSellerBefore), Fields: f}})
	}
	for _, p := range fa.Podmiot2K {
		f := b.identity(p.DaneIdentyfikacyjne, "")
		f = add(f, lblAddress, l, b.address(p.Adres))
		f = add(f, lblBuyerID, l, p.IDNabywcy)
		cols = append(cols, []block{{Title: l.tr(lblBuyerBefore), Fields: f}})
	}
	for i := 0; i < len(cols); i += 2 {
		s.Blocks = append(s.Blocks, block{Columns: cols[i:min(i+2, len(cols))]})
	}
	return s
}

func (b *builder) advances() section {
	l, fa := b.l, b.fa
	s := section{Title: l.tr(lblAdvances)}
	if len(fa.FakturaZaliczkowa) > 0 {
		t := &table{Cols: []column{
			{Title: l.tr(colNo), Align: "C"},
			{Title: l.tr(lblAdvNo), Align: "L", Flex: true},
			{Title: l.tr(lblAdvKSeF), Align: "L", Flex: true},
		}}
		for i, z := range fa.FakturaZaliczkowa {
			ksef := strings.TrimSpace(z.NrKSeFFaZaliczkowej)
			if ksef == "" {
				ksef = l.tr(lblOutsideKSeF)
			}
			t.Rows = append(t.Rows, row{Cells: [][]string{{strconv.Itoa(i + 1)}, {strings.TrimSpace(z.NrFaZaliczkowej)}, {ksef}}})
		}
		s.Blocks = append(s.Blocks, block{Table: t})
	}
	if len(fa.ZaliczkaCzesciowa) > 0 {
		t := &table{Cols: []column{
			{Title: l.tr(colNo), Align: "C"},
			{Title: l.tr(lblAdvDate), Align: "C", Flex: true},
			{Title: l.tr(lblAdvAmount), Align: "R", Flex: true},
			{Title: l.tr(lblFxRate), Align: "R", Flex: true},
		}}
		for i, z := range fa.ZaliczkaCzesciowa {
			t.Rows = append(t.Rows, row{Cells: [][]string{
				{strconv.Itoa(i + 1)}, {l.date(z.P_6Z)}, {l.amount(z.P_15Z)}, {l.quantity(z.KursWalutyZW)},
			}})
		}
		s.Blocks = append(s.Blocks, block{Heading: l.tr(lblPartialAdv), Table: t})
	}
	return s
}

// lineColumn is an optional column of the line table, present when any
// line has a value for it.
type lineColumn struct {
	title text
	align string
	value func(l Language, w *fa3.FaWiersz) string
}

var lineColumns = []lineColumn{
	{colUnitNet, "R", func(l Language, w *fa3.FaWiersz) string { return l.amountN(w.P_9A) }},
	{colUnitGross, "R", func(l Language, w *fa3.FaWiersz) string { return l.amountN(w.P_9B) }},
	{colQty, "R", func(l Language, w *fa3.FaWiersz) string { return l.quantity(w.P_8B) }},
	{colUnit, "C", func(l Language, w *fa3.FaWiersz) string { return strings.TrimSpace(w.P_8A) }},
	{colDiscount, "R", func(l Language, w *fa3.FaWiersz) string { return l.amount(w.P_10) }},
	{colRate, "C", func(l Language, w *fa3.FaWiersz) string { return lineRate(l, w) }},
	{colNet, "R", func(l Language, w *fa3.FaWiersz) string { return l.amount(w.P_11) }},
	{colGross, "R", func(l Language, w *fa3.FaWiersz) string { return l.amount(w.P_11A) }},
	{colVAT, "R", func(l Language, w *fa3.FaWiersz) string { return l.amount(w.P_11Vat) }},
	{colExcise, "R", func(l Language, w *fa3.FaWiersz) string { return l.amount(w.KwotaAkcyzy) }},
	{colFx, "R", func(l Language, w *fa3.FaWiersz) string { return l.quantity(w.KursWaluty) }},
	{colSupply, "C", func(l Language, w *fa3.FaWiersz) string { return l.date(w.P_6A) }},
}

// alwaysShown lists the line columns printed even when every line leaves
// them empty.
func alwaysShown(t text) bool { return t == colQty || t == colUnit || t == colRate }

// amountN formats a unit price: at least 2 decimals, up to the 8 the schema
// allows.
func (l Language) amountN(s string) string { return l.formatDecimal(s, 2) }

func lineRate(l Language, w *fa3.FaWiersz) string {
	r := rate(w.P_12)
	if x := strings.TrimSpace(w.P_12_XII); x != "" {
		r = strings.TrimSpace(r + " " + x + "% " + l.tr(lblOSSRate))
	}
	return r
}

// lineDetails are the secondary lines under a line's name: its codes.
func (b *builder) lineDetails(w *fa3.FaWiersz) string {
	l := b.l
	var parts []string
	for _, c := range []struct {
		label text
		v     string
	}{
		{lblIndex, w.Indeks}, {lblGTIN, w.GTIN}, {lblPKWiU, w.PKWiU}, {lblCN, w.CN}, {lblPKOB, w.PKOB},
		{lblGTU, w.GTU}, {lblProcedure, w.Procedura},
	} {
		if v := strings.TrimSpace(c.v); v != "" {
			parts = append(parts, l.tr(c.label)+": "+v)
		}
	}
	if w.P_12_Zal_15 == "1" {
		parts = append(parts, l.tr(lblAnnex15))
	}
	return strings.Join(parts, "; ")
}

func (b *builder) lines() section {
	l, fa := b.l, b.fa
	s := section{Title: l.tr(lblLines)}
	if len(fa.FaWiersz) == 0 {
		return s
	}
	var cols []lineColumn
	for _, c := range lineColumns {
		used := alwaysShown(c.title)
		for i := 0; !used && i < len(fa.FaWiersz); i++ {
			used = c.value(l, &fa.FaWiersz[i]) != ""
		}
		if used {
			cols = append(cols, c)
		}
	}
	t := &table{Cols: []column{{Title: l.tr(colNo), Align: "C"}, {Title: l.tr(colName), Align: "L", Flex: true}}}
	for _, c := range cols {
		t.Cols = append(t.Cols, column{Title: l.tr(c.title), Align: c.align})
	}
	gross, corrected := false, false
	t.Rows = make([]row, 0, len(fa.FaWiersz))
	for i := range fa.FaWiersz {
		w := &fa.FaWiersz[i]
		if w.P_9A == "" && w.P_11 == "" && (w.P_9B != "" || w.P_11A != "") {
			gross = true
		}
		no := strings.TrimSpace(w.NrWierszaFa)
		if no == "" {
			no = strconv.Itoa(i + 1)
		}
		name := []string{strings.TrimSpace(w.P_7)}
		if d := b.lineDetails(w); d != "" {
			name = append(name, d)
		}
		r := row{Cells: make([][]string, 0, len(t.Cols))}
		if w.StanPrzed == "1" {
			corrected = true
			r.Muted = true
			name = append(name, "("+l.tr(lblBeforeCorr)+")")
		}
		r.Cells = append(r.Cells, []string{no}, name)
		for _, c := range cols {
			r.Cells = append(r.Cells, []string{c.value(l, w)})
		}
		t.Rows = append(t.Rows, r)
	}
	var notes []string
	note := lblNetPricesIn
	if gross {
		note = lblGrossPricesIn
	}
	notes = append(notes, l.trf(note, strings.TrimSpace(fa.KodWaluty)))
	if corrected {
		notes = append(notes, l.tr(lblAfterCorr))
	}
	s.Blocks = []block{{Text: notes, Table: t}}
	return s
}

// rateGroup is one pair P_13_x/P_14_x of the VAT summary.
type rateGroup struct {
	net, vat, vatPLN string
	rates            []string // P_12 values that fall in the group
	label            text     // when no line says which rate applies
}

func (b *builder) rateGroups() []rateGroup {
	fa := b.fa
	return []rateGroup{
		{fa.P_13_1, fa.P_14_1, fa.P_14_1W, []string{"23", "22"}, text{"23% lub 22%", "23% or 22%"}},
		{fa.P_13_2, fa.P_14_2, fa.P_14_2W, []string{"8", "7"}, text{"8% lub 7%", "8% or 7%"}},
		{fa.P_13_3, fa.P_14_3, fa.P_14_3W, []string{"5"}, text{"5%", "5%"}},
		{fa.P_13_4, fa.P_14_4, fa.P_14_4W, []string{"4", "3"}, text{"4% lub 3%", "4% or 3%"}},
		{fa.P_13_5, fa.P_14_5, "", nil, text{"procedura OSS", "OSS procedure"}},
		{fa.P_13_6_1, "", "", nil, text{"0% KR", "0% KR"}},
		{fa.P_13_6_2, "", "", nil, text{"0% WDT", "0% WDT"}},
		{fa.P_13_6_3, "", "", nil, text{"0% EX", "0% EX"}},
		{fa.P_13_7, "", "", nil, text{"zw", "zw (exempt)"}},
		{fa.P_13_8, "", "", nil, text{"np I", "np I (outside Poland)"}},
		{fa.P_13_9, "", "", nil, text{"np II", "np II (art. 100(1)(4))"}},
		{fa.P_13_10, "", "", nil, text{"oo", "oo (reverse charge)"}},
		{fa.P_13_11, "", "", nil, text{"marża", "margin scheme"}},
	}
}

func (b *builder) vatSummary() section {
	l, fa := b.l, b.fa
	s := section{Title: l.tr(lblVATSummary)}
	groups := b.rateGroups()
	withPLN := false
	for _, g := range groups {
		if strings.TrimSpace(g.vatPLN) != "" {
			withPLN = true
		}
	}
	t := &table{Cols: []column{
		{Title: l.tr(colNo), Align: "C"},
		{Title: l.tr(colRate), Align: "L"},
		{Title: l.tr(colNetAmt), Align: "R", Flex: true},
		{Title: l.tr(colVATAmt), Align: "R", Flex: true},
		{Title: l.tr(colGrossAmt), Align: "R", Flex: true},
	}}
	if withPLN {
		t.Cols = append(t.Cols, column{Title: l.tr(colVATPLN), Align: "R", Flex: true})
	}
	for _, g := range groups {
		if strings.TrimSpace(g.net) == "" && strings.TrimSpace(g.vat) == "" {
			continue
		}
		label := l.tr(g.label)
		if found := b.ratesUsed(g.rates); len(found) > 0 {
			label = strings.Join(found, ", ")
		}
		gross, ok := sumDecimals(g.net, g.vat)
		if !ok {
			gross = ""
		}
		cells := [][]string{
			{strconv.Itoa(len(t.Rows) + 1)}, {label}, {l.amount(g.net)}, {l.amount(g.vat)}, {l.amount(gross)},
		}
		if withPLN {
			cells = append(cells, []string{l.amount(g.vatPLN)})
		}
		t.Rows = append(t.Rows, row{Cells: cells})
	}
	total := &field{Label: l.tr(lblTotalDue), Value: l.amount(fa.P_15) + " " + strings.TrimSpace(fa.KodWaluty)}
	if len(t.Rows) > 0 {
		s.Blocks = append(s.Blocks, block{Table: t})
	}
	s.Blocks = append(s.Blocks, block{Total: total})
	return s
}

// ratesUsed lists, in the group's order, the rates of the group that some
// invoice or order line applies, as printed ("23%").
func (b *builder) ratesUsed(group []string) []string {
	used := func(r string) bool {
		for i := range b.fa.FaWiersz {
			if strings.TrimSpace(b.fa.FaWiersz[i].P_12) == r {
				return true
			}
		}
		if z := b.fa.Zamowienie; z != nil {
			for i := range z.ZamowienieWiersz {
				if strings.TrimSpace(z.ZamowienieWiersz[i].P_12Z) == r {
					return true
				}
			}
		}
		return false
	}
	var out []string
	for _, r := range group {
		if used(r) {
			out = append(out, r+"%")
		}
	}
	return out
}

func (b *builder) annotations() section {
	l, a := b.l, b.fa.Adnotacje
	s := section{Title: l.tr(lblAnnotations)}
	var txt []string
	var fs []field
	flag := func(v string, t text) {
		if strings.TrimSpace(v) == "1" {
			txt = append(txt, l.tr(t))
		}
	}
	flag(a.P_16, lblP16)
	flag(a.P_17, lblP17)
	flag(a.P_18, lblP18)
	flag(a.P_18A, lblP18A)
	if a.Zwolnienie.P_19 == "1" {
		basis := []struct {
			v string
			t text
		}{{a.Zwolnienie.P_19A, lblP19A}, {a.Zwolnienie.P_19B, lblP19B}, {a.Zwolnienie.P_19C, lblP19C}}
		added := false
		for _, x := range basis {
			if v := strings.TrimSpace(x.v); v != "" {
				fs = append(fs, field{Label: l.tr(lblP19) + " - " + l.tr(x.t), Value: v})
				added = true
			}
		}
		if !added {
			txt = append(txt, l.tr(lblP19))
		}
	}
	if n := a.NoweSrodkiTransportu; n.P_22 == "1" {
		txt = append(txt, l.tr(lblP22))
		for _, v := range n.NowySrodekTransportu {
			var parts []string
			for _, p := range []string{v.P_22BMK, v.P_22BMD, v.P_22BK, v.P_22BNR, v.P_22BRP, v.P_22B, v.P_22B1, v.P_22B2, v.P_22B3, v.P_22B4, v.P_22BT, v.P_22C, v.P_22C1, v.P_22D, v.P_22D1} {
				if p = strings.TrimSpace(p); p != "" {
					parts = append(parts, p)
				}
			}
			fs = append(fs, field{Label: l.tr(colNo) + " " + strings.TrimSpace(v.P_NrWierszaNST) + ", " + l.date(v.P_22A), Value: strings.Join(parts, "; ")})
		}
	}
	flag(a.P_23, lblP23)
	m := a.PMarzy
	flag(m.P_PMarzy_2, lblPMarzy2)
	flag(m.P_PMarzy_3_1, lblPMarzy31)
	flag(m.P_PMarzy_3_2, lblPMarzy32)
	flag(m.P_PMarzy_3_3, lblPMarzy33)
	if len(txt) > 0 || len(fs) > 0 {
		s.Blocks = []block{{Text: txt, Fields: fs}}
	}
	return s
}

func (b *builder) additional() section {
	l, fa := b.l, b.fa
	s := section{Title: l.tr(lblAdditional)}
	if len(fa.DodatkowyOpis) == 0 {
		return s
	}
	withLine := false
	for _, d := range fa.DodatkowyOpis {
		if strings.TrimSpace(d.NrWiersza) != "" {
			withLine = true
		}
	}
	t := &table{Cols: []column{{Title: l.tr(colNo), Align: "C"}}}
	if withLine {
		t.Cols = append(t.Cols, column{Title: l.tr(colLineRef), Align: "C"})
	}
	t.Cols = append(t.Cols, column{Title: l.tr(colKey), Align: "L"}, column{Title: l.tr(colValue), Align: "L", Flex: true})
	for i, d := range fa.DodatkowyOpis {
		cells := [][]string{{strconv.Itoa(i + 1)}}
		if withLine {
			cells = append(cells, []string{strings.TrimSpace(d.NrWiersza)})
		}
		cells = append(cells, []string{strings.TrimSpace(d.Klucz)}, []string{strings.TrimSpace(d.Wartosc)})
		t.Rows = append(t.Rows, row{Cells: cells})
	}
	s.Blocks = []block{{Table: t}}
	return s
}

func (b *builder) order() section {
	l := b.l
	s := section{Title: l.tr(lblOrder)}
	z := b.fa.Zamowienie
	if z == nil {
		return s
	}
	fs := add(nil, lblOrderValue, l, l.amount(z.WartoscZamowienia)+" "+strings.TrimSpace(b.fa.KodWaluty))
	t := &table{Cols: []column{
		{Title: l.tr(colNo), Align: "C"},
		{Title: l.tr(colName), Align: "L", Flex: true},
		{Title: l.tr(colUnitNet), Align: "R"},
		{Title: l.tr(colQty), Align: "R"},
		{Title: l.tr(colUnit), Align: "C"},
		{Title: l.tr(colRate), Align: "C"},
		{Title: l.tr(colNet), Align: "R"},
		{Title: l.tr(colVAT), Align: "R"},
	}}
	for i, w := range z.ZamowienieWiersz {
		no := strings.TrimSpace(w.NrWierszaZam)
		if no == "" {
			no = strconv.Itoa(i + 1)
		}
		name := []string{strings.TrimSpace(w.P_7Z)}
		r := row{}
		if w.StanPrzedZ == "1" {
			r.Muted = true
			name = append(name, "("+l.tr(lblBeforeCorr)+")")
		}
		rt := rate(w.P_12Z)
		if x := strings.TrimSpace(w.P_12Z_XII); x != "" {
			rt = strings.TrimSpace(rt + " " + x + "% " + l.tr(lblOSSRate))
		}
		r.Cells = [][]string{
			{no}, name, {l.amountN(w.P_9AZ)}, {l.quantity(w.P_8BZ)}, {strings.TrimSpace(w.P_8AZ)},
			{rt}, {l.amount(w.P_11NettoZ)}, {l.amount(w.P_11VatZ)},
		}
		t.Rows = append(t.Rows, r)
	}
	s.Blocks = []block{{Fields: fs}}
	if len(t.Rows) > 0 {
		s.Blocks = append(s.Blocks, block{Table: t})
	}
	return s
}

func (b *builder) settlement() section {
	l := b.l
	s := section{Title: l.tr(lblSettlement)}
	r := b.fa.Rozliczenie
	if r == nil {
		return s
	}
	reasons := func(heading text, items []fa3.KwotaPowod) {
		if len(items) == 0 {
			return
		}
		t := &table{Cols: []column{
			{Title: l.tr(colNo), Align: "C"},
			{Title: l.tr(colReason), Align: "L", Flex: true},
			{Title: l.tr(colAmount), Align: "R"},
		}}
		for i, k := range items {
			t.Rows = append(t.Rows, row{Cells: [][]string{{strconv.Itoa(i + 1)}, {strings.TrimSpace(k.Powod)}, {l.amount(k.Kwota)}}})
		}
		s.Blocks = append(s.Blocks, block{Heading: l.tr(heading), Table: t})
	}
	reasons(lblCharges, r.Obciazenia)
	reasons(lblDeductions, r.Odliczenia)
	var fs []field
	fs = add(fs, lblSumCharges, l, l.amount(r.SumaObciazen))
	fs = add(fs, lblSumDeductions, l, l.amount(r.SumaOdliczen))
	cur := " " + strings.TrimSpace(b.fa.KodWaluty)
	if strings.TrimSpace(r.DoZaplaty) != "" {
		fs = add(fs, lblToPay, l, l.amount(r.DoZaplaty)+cur)
	}
	if strings.TrimSpace(r.DoRozliczenia) != "" {
		fs = add(fs, lblToSettle, l, l.amount(r.DoRozliczenia)+cur)
	}
	if len(fs) > 0 {
		s.Blocks = append(s.Blocks, block{Fields: fs})
	}
	return s
}

func (b *builder) payment() section {
	l := b.l
	s := section{Title: l.tr(lblPayment)}
	p := b.fa.Platnosc
	if p == nil {
		return s
	}
	var fs []field
	switch {
	case p.Zaplacono == "1":
		fs = add(fs, lblPaymentInfo, l, l.tr(lblPaid))
	case p.ZnacznikZaplatyCzesciowej == "1":
		fs = add(fs, lblPaymentInfo, l, l.tr(lblPaidPartially))
	case p.ZnacznikZaplatyCzesciowej == "2":
		fs = add(fs, lblPaymentInfo, l, l.tr(lblPaidInParts))
	}
	fs = add(fs, lblPaidDate, l, l.date(p.DataZaplaty))
	fs = add(fs, lblPayForm, l, l.codeOpt(paymentForms, p.FormaPlatnosci))
	if p.PlatnoscInna == "1" {
		fs = add(fs, lblPayOther, l, p.OpisPlatnosci)
	}
	for _, t := range p.TerminPlatnosci {
		v := l.date(t.Termin)
		if o := t.TerminOpis; o != nil {
			d := strings.TrimSpace(strings.Join(trimAll([]string{o.Ilosc, o.Jednostka, l.tr(lblDueFrom), o.ZdarzeniePoczatkowe}), " "))
			if v != "" {
				v += " (" + d + ")"
			} else {
				v = d
			}
		}
		fs = add(fs, lblDueDate, l, v)
	}
	if sk := p.Skonto; sk != nil {
		fs = add(fs, lblSkontoTerms, l, sk.WarunkiSkonta)
		fs = add(fs, lblSkontoAmount, l, sk.WysokoscSkonta)
	}
	fs = add(fs, lblPayLink, l, p.LinkDoPlatnosci)
	fs = add(fs, lblIPKSeF, l, p.IPKSeF)
	if len(fs) > 0 {
		s.Blocks = append(s.Blocks, block{Fields: fs})
	}
	if len(p.ZaplataCzesciowa) > 0 {
		t := &table{Cols: []column{
			{Title: l.tr(colNo), Align: "C"},
			{Title: l.tr(colDate), Align: "C"},
			{Title: l.tr(colAmount), Align: "R"},
			{Title: l.tr(colPayForm), Align: "L", Flex: true},
		}}
		for i, z := range p.ZaplataCzesciowa {
			form := l.codeOpt(paymentForms, z.FormaPlatnosci)
			if z.PlatnoscInna == "1" {
				form = strings.TrimSpace(z.OpisPlatnosci)
			}
			t.Rows = append(t.Rows, row{Cells: [][]string{
				{strconv.Itoa(i + 1)}, {l.date(z.DataZaplatyCzesciowej)}, {l.amount(z.KwotaZaplatyCzesciowej)}, {form},
			}})
		}
		s.Blocks = append(s.Blocks, block{Heading: l.tr(lblPartialPays), Table: t})
	}
	b.accounts(&s, lblBankAccount, p.RachunekBankowy)
	b.accounts(&s, lblFactorAccount, p.RachunekBankowyFaktora)
	return s
}

func (b *builder) accounts(s *section, heading text, accs []fa3.RachunekBankowy) {
	if len(accs) == 0 {
		return
	}
	l := b.l
	t := &table{Cols: []column{
		{Title: l.tr(colAccount), Align: "L"},
		{Title: l.tr(colSWIFT), Align: "L"},
		{Title: l.tr(colBank), Align: "L", Flex: true},
		{Title: l.tr(colAccDescr), Align: "L", Flex: true},
	}}
	for _, a := range accs {
		descr := []string{strings.TrimSpace(a.OpisRachunku)}
		if own := l.codeOpt(ownBankAccounts, a.RachunekWlasnyBanku); own != "" {
			descr = append(descr, l.tr(lblOwnBankAcc)+": "+own)
		}
		t.Rows = append(t.Rows, row{Cells: [][]string{
			{groupAccount(a.NrRB)}, {strings.TrimSpace(a.SWIFT)}, {strings.TrimSpace(a.NazwaBanku)}, descr,
		}})
	}
	s.Blocks = append(s.Blocks, block{Heading: l.tr(heading), Table: t})
}

// groupAccount prints a Polish NRB (26 digits) in the usual groups
// "12 3456 7890 ..."; other account numbers are left as they are.
func groupAccount(s string) string {
	s = strings.TrimSpace(s)
	if len(s) != 26 || strings.Trim(s, "0123456789") != "" {
		return s
	}
	var b strings.Builder
	b.WriteString(s[:2])
	for i := 2; i < 26; i += 4 {
		b.WriteString(" ")
		b.WriteString(s[i : i+4])
	}
	return b.String()
}

func (b *builder) terms() section {
	l := b.l
	s := section{Title: l.tr(lblTerms)}
	w := b.fa.WarunkiTransakcji
	if w == nil {
		return s
	}
	refs := func(heading text, items [][2]string) {
		if len(items) == 0 {
			return
		}
		t := &table{Cols: []column{
			{Title: l.tr(colNo), Align: "C"},
			{Title: l.tr(colDate), Align: "C"},
			{Title: l.tr(colNumber), Align: "L", Flex: true},
		}}
		for i, it := range items {
			t.Rows = append(t.Rows, row{Cells: [][]string{{strconv.Itoa(i + 1)}, {l.date(it[0])}, {strings.TrimSpace(it[1])}}})
		}
		s.Blocks = append(s.Blocks, block{Heading: l.tr(heading), Table: t})
	}
	var us, zs [][2]string
	for _, u := range w.Umowy {
		us = append(us, [2]string{u.DataUmowy, u.NrUmowy})
	}
	for _, z := range w.Zamowienia {
		zs = append(zs, [2]string{z.DataZamowienia, z.NrZamowienia})
	}
	refs(lblContracts, us)
	refs(lblOrders, zs)
	var fs []field
	fs = add(fs, lblBatch, l, strings.Join(trimAll(w.NrPartiiTowaru), ", "))
	fs = add(fs, lblDeliveryTerms, l, w.WarunkiDostawy)
	fs = add(fs, lblContractRate, l, l.quantity(w.KursUmowny))
	fs = add(fs, lblContractCurr, l, w.WalutaUmowna)
	if w.PodmiotPosredniczacy == "1" {
		fs = add(fs, lblIntermediary, l, l.tr(lblYes))
	}
	if len(fs) > 0 {
		s.Blocks = append(s.Blocks, block{Fields: fs})
	}
	for i, t := range w.Transport {
		var tf []field
		tf = add(tf, lblTransportKind, l, l.codeOpt(transportKinds, t.RodzajTransportu))
		if t.TransportInny == "1" {
			tf = add(tf, lblOtherTransport, l, t.OpisInnegoTransportu)
		}
		if p := t.Przewoznik; p != nil {
			carrier := b.identity(p.DaneIdentyfikacyjne, "")
			var parts []string
			for _, f := range carrier {
				parts = append(parts, strings.TrimSpace(f.Label+": "+f.Value))
			}
			if a := b.address(&p.AdresPrzewoznika); a != "" {
				parts = append(parts, strings.ReplaceAll(a, "\n", ", "))
			}
			tf = add(tf, lblCarrier, l, strings.Join(parts, "\n"))
		}
		tf = add(tf, lblTransportOrder, l, t.NrZleceniaTransportu)
		tf = add(tf, lblCargo, l, l.codeOpt(cargoKinds, t.OpisLadunku))
		if t.LadunekInny == "1" {
			tf = add(tf, lblOtherCargo, l, t.OpisInnegoLadunku)
		}
		tf = add(tf, lblPackaging, l, t.JednostkaOpakowania)
		tf = add(tf, lblTransportStart, l, l.dateTime(t.DataGodzRozpTransportu))
		tf = add(tf, lblTransportEnd, l, l.dateTime(t.DataGodzZakTransportu))
		tf = add(tf, lblShipFrom, l, oneLine(b.address(t.WysylkaZ)))
		for j := range t.WysylkaPrzez {
			tf = add(tf, lblShipVia, l, oneLine(b.address(&t.WysylkaPrzez[j])))
		}
		tf = add(tf, lblShipTo, l, oneLine(b.address(t.WysylkaDo)))
		if len(tf) > 0 {
			s.Blocks = append(s.Blocks, block{Heading: l.tr(lblTransport) + " " + strconv.Itoa(i+1), Fields: tf})
		}
	}
	return s
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", ", ") }

func (b *builder) footer() section {
	l := b.l
	s := section{Title: l.tr(lblFooterSection)}
	st := b.inv.Stopka
	if st == nil {
		return s
	}
	var txt []string
	for _, i := range st.Informacje {
		if v := strings.TrimSpace(i.StopkaFaktury); v != "" {
			txt = append(txt, v)
		}
	}
	if len(txt) > 0 {
		s.Blocks = append(s.Blocks, block{Heading: l.tr(lblFooterText), Text: txt})
	}
	if len(st.Rejestry) > 0 {
		t := &table{Cols: []column{
			{Title: l.tr(lblFullName), Align: "L", Flex: true},
			{Title: "KRS", Align: "C"},
			{Title: "REGON", Align: "C"},
			{Title: "BDO", Align: "C"},
		}}
		for _, r := range st.Rejestry {
			t.Rows = append(t.Rows, row{Cells: [][]string{
				{strings.TrimSpace(r.PelnaNazwa)}, {strings.TrimSpace(r.KRS)}, {strings.TrimSpace(r.REGON)}, {strings.TrimSpace(r.BDO)},
			}})
		}
		s.Blocks = append(s.Blocks, block{Heading: l.tr(lblRegisters), Table: t})
	}
	return s
}

func (b *builder) attachment() section {
	l := b.l
	s := section{Title: l.tr(lblAttachment)}
	z := b.inv.Zalacznik
	if z == nil {
		return s
	}
	for _, bd := range z.BlokDanych {
		blk := block{Heading: strings.TrimSpace(bd.ZNaglowek)}
		for _, m := range bd.MetaDane {
			blk.Fields = append(blk.Fields, field{Label: strings.TrimSpace(m.ZKlucz), Value: strings.TrimSpace(m.ZWartosc)})
		}
		if bd.Tekst != nil {
			blk.Text = trimAll(bd.Tekst.Akapit)
		}
		if !blk.empty() {
			s.Blocks = append(s.Blocks, blk)
		}
		for _, tb := range bd.Tabela {
			tblk := block{}
			for _, m := range tb.TMetaDane {
				tblk.Fields = append(tblk.Fields, field{Label: strings.TrimSpace(m.TKlucz), Value: strings.TrimSpace(m.TWartosc)})
			}
			if o := strings.TrimSpace(tb.Opis); o != "" {
				tblk.Text = []string{o}
			}
			t := &table{}
			for _, k := range tb.TNaglowek.Kol {
				align := "L"
				switch k.Typ {
				case "dec", "int":
					align = "R"
				case "date", "datetime", "time":
					align = "C"
				}
				t.Cols = append(t.Cols, column{Title: strings.TrimSpace(k.NKom), Align: align})
			}
			if len(t.Cols) > 0 {
				t.Cols[0].Flex = true
				for _, w := range tb.Wiersz {
					t.Rows = append(t.Rows, row{Cells: fitCells(w.WKom, len(t.Cols))})
				}
				if tb.Suma != nil {
					t.Rows = append(t.Rows, row{Cells: fitCells(tb.Suma.SKom, len(t.Cols))})
				}
				tblk.Table = t
			}
			if !tblk.empty() {
				s.Blocks = append(s.Blocks, tblk)
			}
		}
	}
	return s
}

// fitCells makes a row exactly n cells wide, so a malformed attachment row
// cannot break the table.
func fitCells(vals []string, n int) [][]string {
	cells := make([][]string, n)
	for i := range cells {
		v := ""
		if i < len(vals) {
			v = strings.TrimSpace(vals[i])
		}
		cells[i] = []string{v}
	}
	return cells
}

package visualize

import (
	"context"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"codeberg.org/go-pdf/fpdf"
)

// Page geometry (mm, A4 portrait) and type sizes (pt).
const (
	pageW, pageH = 210.0, 297.0
	marginX      = 14.0
	marginTop    = 13.0
	contentBot   = pageH - 17.0 // body text stops here; the footer sits below
	footerY      = pageH - 11.0
	colGap       = 8.0

	sizeBrand    = 8.5
	sizeTitle    = 17.0
	sizeMinTitle = 11.0
	sizeNumber   = 12.5
	sizeSection  = 10.0
	sizePartyTtl = 9.5
	sizeText     = 8.0
	sizeTable    = 7.3
	sizeTableSub = 6.3
	sizeTableHdr = 6.9
	sizeFooter   = 7.0
	sizeURL      = 6.8
	sizeQRLabel  = 7.0

	ptToMM    = 25.4 / 72
	leading   = 1.28 // line height / font size
	cellPadX  = 1.3
	cellPadY  = 0.9
	qrSize    = 34.0
	ruleWidth = 0.2
)

type rgb struct{ r, g, b int }

var (
	colText    = rgb{31, 35, 40}
	colMuted   = rgb{105, 112, 120}
	colAccent  = rgb{25, 55, 100}
	colRed     = rgb{180, 30, 40}
	colRule    = rgb{196, 202, 210}
	colHdrFill = rgb{232, 237, 243}
	colMuteRow = rgb{245, 245, 246}
	colTotal   = rgb{238, 242, 247}
	colLink    = rgb{20, 80, 160}
)

// pdfWriter lays a document out on A4 pages. It manages page breaks itself
// (fpdf's automatic breaks are off) so that table headers repeat and blocks
// that belong together stay together.
type pdfWriter struct {
	ctx   context.Context
	f     *fpdf.Fpdf
	fonts fontSet
	doc   *document
	y     float64
	width float64
	size  float64 // current font size, pt
}

func (r *Renderer) renderPDF(ctx context.Context, w io.Writer, doc *document) error {
	f := fpdf.NewCustom(&fpdf.InitType{OrientationStr: "P", UnitStr: "mm", SizeStr: "A4"})
	f.SetCatalogSort(true)
	f.SetCompression(true)
	f.SetCreationDate(doc.Created)
	f.SetModificationDate(doc.Created)
	f.SetProducer(r.producer, true)
	f.SetCreator(r.producer, true)
	f.SetTitle(doc.Title+" "+doc.Number, true)
	f.SetLang(doc.HTMLLang)
	f.AddUTF8FontFromBytes(fontFamily, "", r.fonts.regular)
	f.AddUTF8FontFromBytes(fontFamily, "B", r.fonts.bold)
	f.SetMargins(marginX, marginTop, marginX)
	f.SetAutoPageBreak(false, 0)
	f.SetCellMargin(0)
	if err := f.Error(); err != nil {
		return fmt.Errorf("visualize: pdf setup: %w", err)
	}
	p := &pdfWriter{ctx: ctx, f: f, fonts: r.fonts, doc: doc, width: pageW - 2*marginX}
	if err := p.render(); err != nil {
		return err
	}
	if err := f.Error(); err != nil {
		return fmt.Errorf("visualize: pdf: %w", err)
	}
	if err := f.Output(w); err != nil {
		return fmt.Errorf("visualize: pdf output: %w", err)
	}
	return nil
}

func (p *pdfWriter) render() error {
	p.f.AddPage()
	p.y = marginTop
	p.header()
	for _, s := range p.doc.Sections {
		if err := p.ctx.Err(); err != nil {
			return err
		}
		if err := p.section(s); err != nil {
			return err
		}
	}
	p.qrCodes()
	p.footers()
	return p.ctx.Err()
}

// --- primitives --------------------------------------------------------

func (p *pdfWriter) font(style string, size float64) {
	p.f.SetFont(fontFamily, style, size)
	p.size = size
}

func (p *pdfWriter) color(c rgb) { p.f.SetTextColor(c.r, c.g, c.b) }

// lineH is the height of one line of text at size pt.
func lineH(size float64) float64 { return size * ptToMM * leading }

// text draws one line with its top at y, aligned in [x, x+w].
func (p *pdfWriter) text(x, y, w float64, align string, s string) {
	if s == "" {
		return
	}
	switch align {
	case "R":
		x += w - p.f.GetStringWidth(s)
	case "C":
		x += (w - p.f.GetStringWidth(s)) / 2
	}
	size := p.size * ptToMM
	p.f.Text(x, y+(lineH(p.size)-size)/2+0.78*size, s)
}

func (p *pdfWriter) rule(x1, y, x2 float64, c rgb, w float64) {
	p.f.SetDrawColor(c.r, c.g, c.b)
	p.f.SetLineWidth(w)
	p.f.Line(x1, y, x2, y)
}

// wrap breaks s into lines no wider than w in the current font: at spaces
// (a no-break space never breaks), explicit "\n", and inside words too long
// for a line.
//
// Every rune is measured a bounded number of times, so wrapping is linear in
// len(s); a cancelled ctx stops it (the caller checks p.ctx before output).
func (p *pdfWriter) wrap(s string, w float64) []string {
	s = p.fonts.clean(s)
	var out []string
	for _, para := range strings.Split(s, "\n") {
		if p.ctx.Err() != nil {
			return out
		}
		out = append(out, p.wrapLine(para, w)...)
	}
	return out
}

func (p *pdfWriter) wrapLine(s string, w float64) []string {
	if p.f.GetStringWidth(s) <= w {
		return []string{s}
	}
	space := p.f.GetStringWidth(" ")
	var lines []string
	cur, curW := "", 0.0
	for _, word := range strings.Split(s, " ") {
		if word == "" {
			continue
		}
		ww := p.f.GetStringWidth(word)
		if cur != "" && curW+space+ww <= w {
			cur, curW = cur+" "+word, curW+space+ww
			continue
		}
		if cur != "" {
			lines = append(lines, cur)
		}
		for ww > w {
			n := p.fitRunes(word, w)
			lines = append(lines, word[:n])
			// Subtract what was cut rather than measure the rest again:
			// re-measuring made a long word quadratic.
			ww -= p.f.GetStringWidth(word[:n])
			word = word[n:]
			if word == "" {
				ww = 0
			}
		}
		cur, curW = word, ww
	}
	if cur != "" || len(lines) == 0 {
		lines = append(lines, cur)
	}
	return lines
}

// fitRunes is the byte length of the longest prefix of s (at least one rune)
// that fits in w.
func (p *pdfWriter) fitRunes(s string, w float64) int {
	n, width := 0, 0.0
	for i, r := range s {
		cw := p.f.GetStringWidth(string(r))
		if i > 0 && width+cw > w {
			return i
		}
		width += cw
		n = i + utf8.RuneLen(r)
	}
	return n
}

// newPage starts a continuation page with a running header.
func (p *pdfWriter) newPage() {
	p.f.AddPage()
	p.y = marginTop
	p.font("", sizeFooter)
	p.color(colMuted)
	left := p.fonts.clean(p.doc.Title + " " + p.doc.Number)
	p.text(marginX, p.y, p.width/2, "L", left)
	right := p.fonts.clean(p.doc.KSeFLabel + ": " + p.doc.KSeFNumber)
	p.text(marginX+p.width/2, p.y, p.width/2, "R", right)
	p.y += lineH(sizeFooter) + 0.8
	p.rule(marginX, p.y, marginX+p.width, colRule, ruleWidth)
	p.y += 3
	p.color(colText)
}

// ensure starts a new page unless h more millimetres fit on this one.
func (p *pdfWriter) ensure(h float64) {
	if p.y+h > contentBot {
		p.newPage()
	}
}

// --- header and footer ---------------------------------------------------

func (p *pdfWriter) header() {
	d := p.doc
	leftW := p.width * 0.55
	rightW := p.width - leftW - 4
	rightX := marginX + p.width - rightW

	// Left: the system's name (with the red "e" of e-Faktur) and the title.
	y := p.y
	p.font("B", sizeBrand)
	p.color(colAccent)
	brand := p.fonts.clean(d.Brand)
	if i := strings.Index(brand, "e-Faktur"); i >= 0 {
		x := marginX
		for _, part := range []struct {
			s string
			c rgb
		}{{brand[:i], colAccent}, {"e", colRed}, {brand[i+1:], colAccent}} {
			p.color(part.c)
			p.text(x, y, leftW, "L", part.s)
			x += p.f.GetStringWidth(part.s)
		}
	} else {
		p.text(marginX, y, leftW, "L", brand)
	}
	y += lineH(sizeBrand) + 3
	// The title takes one line beside the numbers, in a smaller size if
	// need be; a title too long even for that goes below, full width.
	title := p.fonts.clean(d.Title)
	titleSize, titleBelow := sizeTitle, false
	for p.font("B", titleSize); p.f.GetStringWidth(title) > leftW; p.font("B", titleSize) {
		if titleSize -= 0.5; titleSize < sizeMinTitle {
			titleSize, titleBelow = sizeTitle-3, true
			break
		}
	}
	if !titleBelow {
		p.color(colText)
		p.text(marginX, y, leftW, "L", title)
		y += lineH(titleSize)
	}
	if d.Notice != "" {
		p.font("B", sizeText)
		p.color(colRed)
		for _, ln := range p.wrap(d.Notice, leftW) {
			p.text(marginX, y, leftW, "L", ln)
			y += lineH(sizeText)
		}
	}

	// Right: invoice number and KSeF number, right-aligned.
	ry := p.y
	label := func(s string) {
		p.font("", sizeFooter)
		p.color(colMuted)
		for _, ln := range p.wrap(s, rightW) {
			p.text(rightX, ry, rightW, "R", ln)
			ry += lineH(sizeFooter)
		}
	}
	value := func(s string, size float64) {
		p.font("B", size)
		p.color(colText)
		for _, ln := range p.wrap(s, rightW) {
			p.text(rightX, ry, rightW, "R", ln)
			ry += lineH(size)
		}
	}
	label(d.NumberLabel)
	value(d.Number, sizeNumber)
	ry += 1.5
	label(d.KSeFLabel)
	value(d.KSeFNumber, sizeText+0.5)

	p.y = max(y, ry)
	if titleBelow {
		p.y += 1
		p.font("B", titleSize)
		p.color(colText)
		for _, ln := range p.wrap(title, p.width) {
			p.text(marginX, p.y, p.width, "L", ln)
			p.y += lineH(titleSize)
		}
	}
	p.y += 2.5
	p.rule(marginX, p.y, marginX+p.width, colAccent, 0.5)
	p.y += 2
	p.color(colText)
}

// footers draws every page's footer once the page count is known:
// SystemInfo on the left, "Strona N z M" on the right.
func (p *pdfWriter) footers() {
	total := p.f.PageCount()
	for n := 1; n <= total; n++ {
		p.f.SetPage(n)
		p.f.SetFillColor(255, 255, 255)
		p.rule(marginX, footerY-1.5, marginX+p.width, colRule, ruleWidth)
		p.font("B", sizeFooter) // force a font selection into this page's stream
		p.font("", sizeFooter)
		p.color(colMuted)
		if p.doc.GeneratedIn != "" {
			p.text(marginX, footerY, p.width*0.6, "L", p.fonts.clean(p.doc.GeneratedIn))
		}
		p.text(marginX, footerY, p.width, "R", p.doc.Lang.pageLabel(n, fmt.Sprint(total)))
	}
}

// --- sections and blocks -------------------------------------------------

func (p *pdfWriter) section(s section) error {
	if s.Title != "" {
		// Keep the title with the start of its content.
		need := 14.0
		if len(s.Blocks) > 0 {
			need = p.startHeight(s.Blocks[0])
		}
		p.ensure(lineH(sizeSection) + 5 + need)
		p.sectionTitle(s.Title)
	} else {
		p.y += 1.5
	}
	for _, b := range s.Blocks {
		if err := p.block(b); err != nil {
			return err
		}
	}
	return nil
}

func (p *pdfWriter) sectionTitle(title string) {
	p.y += 2.5
	p.font("B", sizeSection)
	p.color(colAccent)
	p.text(marginX, p.y, p.width, "L", p.fonts.clean(title))
	p.y += lineH(sizeSection) + 0.3
	p.rule(marginX, p.y, marginX+p.width, colAccent, 0.3)
	p.y += 1.8
	p.color(colText)
}

// startHeight is how much of b must fit below a heading so that the
// heading is not left alone at the bottom of a page.
func (p *pdfWriter) startHeight(b block) float64 {
	const lines = 14.0 // a few lines of text, or a table header and a row
	h := 0.0
	if b.Title != "" || b.Heading != "" || len(b.Fields) > 0 || len(b.Text) > 0 {
		h = p.layoutText(b, marginX, p.width, false, false)
	}
	switch {
	case b.Table != nil:
		h += lines
	case len(b.Columns) > 0:
		h += p.columnsHeight(b.Columns)
	case b.Total != nil:
		h += lineH(sizeNumber) + 5
	}
	return min(h, lines*3)
}

func (p *pdfWriter) block(b block) error {
	if err := p.ctx.Err(); err != nil {
		return err
	}
	if b.Title != "" || b.Heading != "" || len(b.Fields) > 0 || len(b.Text) > 0 {
		if b.Table != nil {
			// Keep a short heading or note with the start of its table.
			if h := p.layoutText(b, marginX, p.width, false, false); h < 40 {
				p.ensure(h + 14)
			}
		}
		p.flow(b, marginX, p.width)
	}
	if b.Table != nil {
		if err := p.table(b.Table); err != nil {
			return err
		}
	}
	if len(b.Columns) > 0 {
		p.columns(b.Columns)
	}
	if b.Total != nil {
		p.total(*b.Total)
	}
	return nil
}

// flow draws a block's title, heading, fields and text across the page,
// breaking pages between lines.
func (p *pdfWriter) flow(b block, x, w float64) {
	p.layoutText(b, x, w, true, true)
}

// layoutText lays out the text parts of a block at (x, p.y) in width w and
// returns its height. With draw false it only measures; with breakable it
// may start new pages between lines (only for full-width blocks).
func (p *pdfWriter) layoutText(b block, x, w float64, draw, breakable bool) float64 {
	y := p.y
	line := func(h float64) {
		if draw && breakable && y+h > contentBot {
			p.newPage()
			y = p.y
		}
	}
	emit := func(style string, size float64, c rgb, lx, lw float64, s string) {
		p.font(style, size)
		for _, ln := range p.wrap(s, lw) {
			line(lineH(size))
			if draw {
				p.color(c)
				p.text(lx, y, lw, "L", ln)
			}
			y += lineH(size)
		}
	}
	if b.Title != "" {
		emit("B", sizePartyTtl, colAccent, x, w, b.Title)
		y += 0.8
	}
	if b.Heading != "" {
		y += 1
		emit("B", sizeText+0.5, colText, x, w, b.Heading)
		y += 0.5
	}
	lh := lineH(sizeText)
	for _, f := range b.Fields {
		if f.Value == "" {
			emit("B", sizeText, colText, x, w, f.Label)
			continue
		}
		p.font("B", sizeText)
		label := p.fonts.clean(f.Label) + ": "
		lw := p.f.GetStringWidth(label)
		if lw > w*0.45 {
			// A long label wraps; a short one-line value follows its last
			// line, anything longer starts below it.
			lines := p.wrap(strings.TrimSpace(label), w)
			last := lines[len(lines)-1] + " "
			lastW := p.f.GetStringWidth(last)
			p.font("", sizeText)
			inline := !strings.Contains(f.Value, "\n") && p.f.GetStringWidth(p.fonts.clean(f.Value)) <= w-lastW
			for i, ln := range lines {
				line(lh)
				if draw {
					p.font("B", sizeText)
					p.color(colText)
					p.text(x, y, w, "L", ln)
					if inline && i == len(lines)-1 {
						p.font("", sizeText)
						p.text(x+lastW, y, w-lastW, "L", p.fonts.clean(f.Value))
					}
				}
				y += lh
			}
			if !inline {
				emit("", sizeText, colText, x, w, f.Value)
			}
			continue
		}
		p.font("", sizeText)
		vals := p.wrap(f.Value, w-lw)
		for i, v := range vals {
			line(lh)
			if draw {
				if i == 0 {
					p.font("B", sizeText)
					p.color(colText)
					p.text(x, y, lw, "L", label)
					p.font("", sizeText)
				}
				p.text(x+lw, y, w-lw, "L", v)
			}
			y += lh
		}
	}
	for _, t := range b.Text {
		emit("", sizeText, colText, x, w, t)
	}
	h := y - p.y
	if draw {
		p.y = y + 1
	}
	return h
}

// columnWidth is the width of each of cols laid side by side; a lone column
// takes half the page, like its siblings in the rows above.
func (p *pdfWriter) columnWidth(cols [][]block) float64 {
	n := float64(max(len(cols), 2))
	return (p.width - colGap*(n-1)) / n
}

func (p *pdfWriter) columnsHeight(cols [][]block) float64 {
	cw := p.columnWidth(cols)
	maxH := 0.0
	for _, col := range cols {
		h := 0.0
		for _, b := range col {
			h += p.layoutText(b, 0, cw, false, false) + 1
		}
		maxH = max(maxH, h)
	}
	return maxH
}

// columns lays blocks out side by side, keeping them on one page.
func (p *pdfWriter) columns(cols [][]block) {
	cw := p.columnWidth(cols)
	maxH := p.columnsHeight(cols)
	if maxH > contentBot-marginTop-10 {
		// Taller than a page: give up on side by side.
		for _, col := range cols {
			for _, b := range col {
				p.flow(b, marginX, p.width)
			}
		}
		return
	}
	p.ensure(maxH)
	y0 := p.y
	for i, col := range cols {
		p.y = y0
		x := marginX + float64(i)*(cw+colGap)
		for _, b := range col {
			p.layoutText(b, x, cw, true, false)
		}
	}
	p.y = y0 + maxH + 1.5
}

func (p *pdfWriter) total(f field) {
	label := p.fonts.clean(f.Label) + ": "
	value := p.fonts.clean(f.Value)
	p.font("", sizeText+1)
	lw := p.f.GetStringWidth(label)
	p.font("B", sizeNumber-1)
	vw := p.f.GetStringWidth(value)
	h := lineH(sizeNumber-1) + 2.4
	p.ensure(h + 2)
	p.y += 1.5
	bw := min(lw+vw+6, p.width)
	x := marginX + p.width - bw
	p.f.SetFillColor(colTotal.r, colTotal.g, colTotal.b)
	p.f.Rect(x, p.y, bw, h, "F")
	ty := p.y + 1.2
	p.font("", sizeText+1)
	p.color(colText)
	// Align the label's baseline with the value's.
	p.text(x+3, ty+(lineH(sizeNumber-1)-lineH(sizeText+1))/2+0.25, lw, "L", label)
	p.font("B", sizeNumber-1)
	p.text(x+3+lw, ty, vw, "L", value)
	p.y += h + 1.5
}

// --- tables ----------------------------------------------------------------

// cellLine is one laid-out line of a table cell.
type cellLine struct {
	s    string
	sub  bool // secondary line: smaller and grey
	bold bool
}

func (p *pdfWriter) colWidths(t *table) []float64 {
	ws := make([]float64, len(t.Cols))
	minW := make([]float64, len(t.Cols))
	for i, c := range t.Cols {
		// The header may wrap between words but never inside one.
		// The header may wrap between words but never inside one, and
		// into no more than about three lines.
		p.font("B", sizeTableHdr)
		title := p.fonts.clean(c.Title)
		for _, word := range strings.Fields(title) {
			minW[i] = max(minW[i], p.f.GetStringWidth(word)+2*cellPadX)
		}
		titleW := p.f.GetStringWidth(title)
		if titleW <= 16 {
			minW[i] = max(minW[i], titleW+2*cellPadX)
		}
		for minW[i] < 40 && len(p.wrap(title, minW[i]-2*cellPadX)) > 3 {
			minW[i]++
		}
		ws[i] = minW[i]
	}
	p.font("", sizeTable)
	for _, r := range t.Rows {
		for i, cell := range r.Cells {
			if i >= len(ws) || len(cell) == 0 {
				continue
			}
			ws[i] = max(ws[i], p.f.GetStringWidth(p.fonts.clean(cell[0]))+2*cellPadX)
		}
	}
	const maxFixed = 55.0
	fixed, flexNat := 0.0, 0.0
	for i, c := range t.Cols {
		if c.Flex {
			ws[i] = max(ws[i], 22)
			flexNat += ws[i]
			continue
		}
		ws[i] = min(ws[i], max(maxFixed, minW[i]))
		fixed += ws[i]
	}
	if flexNat == 0 {
		// No flexible column: spread the slack over all of them.
		scale := p.width / fixed
		for i := range ws {
			ws[i] *= scale
		}
		return ws
	}
	remaining := p.width - fixed
	if remaining < 30 {
		// Too many wide columns: shrink the fixed ones; their text wraps.
		scale := (p.width - 30) / fixed
		for i, c := range t.Cols {
			if !c.Flex {
				ws[i] *= scale
			}
		}
		remaining = 30
	}
	for i, c := range t.Cols {
		if c.Flex {
			ws[i] = remaining * ws[i] / flexNat
		}
	}
	return ws
}

// cellLines wraps a cell to its column.
func (p *pdfWriter) cellLines(cell []string, w float64, header bool) ([]cellLine, float64) {
	var out []cellLine
	h := 2 * cellPadY
	inner := w - 2*cellPadX
	for i, s := range cell {
		sub := i > 0
		switch {
		case header:
			p.font("B", sizeTableHdr)
		case sub:
			p.font("", sizeTableSub)
		default:
			p.font("", sizeTable)
		}
		for _, ln := range p.wrap(s, inner) {
			out = append(out, cellLine{s: ln, sub: sub, bold: header})
			h += lineH(p.size)
		}
	}
	if len(out) == 0 {
		h += lineH(sizeTable)
	}
	return out, h
}

func (p *pdfWriter) table(t *table) error {
	ws := p.colWidths(t)
	hdr := make([][]cellLine, len(t.Cols))
	hdrH := 0.0
	for i, c := range t.Cols {
		var h float64
		hdr[i], h = p.cellLines([]string{c.Title}, ws[i], true)
		hdrH = max(hdrH, h)
	}
	drawHeader := func() {
		p.f.SetFillColor(colHdrFill.r, colHdrFill.g, colHdrFill.b)
		p.f.Rect(marginX, p.y, p.width, hdrH, "F")
		p.drawRow(t, ws, hdr, hdrH, false)
	}
	laid := make([][]cellLine, len(t.Cols))
	for ri, r := range t.Rows {
		if ri%64 == 0 {
			if err := p.ctx.Err(); err != nil {
				return err
			}
		}
		rowH := 0.0
		for i := range t.Cols {
			var cell []string
			if i < len(r.Cells) {
				cell = r.Cells[i]
			}
			var h float64
			laid[i], h = p.cellLines(cell, ws[i], false)
			rowH = max(rowH, h)
		}
		if ri == 0 {
			p.ensure(hdrH + rowH)
			drawHeader()
		} else if p.y+rowH > contentBot {
			p.newPage()
			drawHeader()
		}
		if r.Muted {
			p.f.SetFillColor(colMuteRow.r, colMuteRow.g, colMuteRow.b)
			p.f.Rect(marginX, p.y, p.width, rowH, "F")
		}
		p.drawRow(t, ws, laid, rowH, r.Muted)
	}
	p.y += 1.5
	return nil
}

// drawRow draws one row (or the header) at p.y with its grid lines.
func (p *pdfWriter) drawRow(t *table, ws []float64, cells [][]cellLine, h float64, muted bool) {
	x := marginX
	for i, c := range t.Cols {
		y := p.y + cellPadY
		if len(cells[i]) > 0 && cells[i][0].bold {
			// Header cells are centred vertically too.
			y += (h - 2*cellPadY - float64(len(cells[i]))*lineH(sizeTableHdr)) / 2
		}
		for _, ln := range cells[i] {
			switch {
			case ln.bold:
				p.font("B", sizeTableHdr)
				p.color(colText)
			case ln.sub:
				p.font("", sizeTableSub)
				p.color(colMuted)
			default:
				p.font("", sizeTable)
				if muted {
					p.color(colMuted)
				} else {
					p.color(colText)
				}
			}
			align := c.Align
			if ln.bold {
				align = "C"
			}
			p.text(x+cellPadX, y, ws[i]-2*cellPadX, align, ln.s)
			y += lineH(p.size)
		}
		x += ws[i]
	}
	p.f.SetDrawColor(colRule.r, colRule.g, colRule.b)
	p.f.SetLineWidth(ruleWidth)
	p.f.Rect(marginX, p.y, p.width, h, "D")
	x = marginX
	for i := 0; i < len(ws)-1; i++ {
		x += ws[i]
		p.f.Line(x, p.y, x, p.y+h)
	}
	p.y += h
	p.color(colText)
}

// --- QR codes --------------------------------------------------------------

func (p *pdfWriter) qrCodes() {
	for _, q := range p.doc.QR {
		// The label (a KSeF number is 35 characters) sets the width of the
		// code's column; the hint and the link go to its right.
		p.font("", sizeQRLabel)
		label := p.wrap(q.Label, 60)
		colW := qrSize
		for _, ln := range label {
			colW = max(colW, p.f.GetStringWidth(ln))
		}
		textW := p.width - colW - 6
		p.font("", sizeText)
		hint := p.wrap(q.Hint, textW)
		p.font("", sizeURL)
		url := p.wrap(q.URL, textW)
		labelH := float64(len(label)) * lineH(sizeQRLabel)
		h := lineH(sizeSection) + 6 + max(qrSize+labelH+2, float64(len(hint)+len(url))*lineH(sizeText))
		p.ensure(h)
		p.sectionTitle(q.Title)

		// The code: dark modules as filled squares (runs merged); the quiet
		// zone is the white page around it.
		y0 := p.y + 1
		qx := marginX + (colW-qrSize)/2
		mod := qrSize / float64(len(q.Modules))
		p.f.SetFillColor(0, 0, 0)
		for y, rowMods := range q.Modules {
			for x := 0; x < len(rowMods); x++ {
				if !rowMods[x] {
					continue
				}
				run := 1
				for x+run < len(rowMods) && rowMods[x+run] {
					run++
				}
				p.f.Rect(qx+float64(x)*mod, y0+float64(y)*mod, float64(run)*mod+0.01, mod+0.01, "F")
				x += run - 1
			}
		}
		p.font("", sizeQRLabel)
		p.color(colText)
		ly := y0 + qrSize + 1.5
		for _, ln := range label {
			p.text(marginX, ly, colW, "C", ln)
			ly += lineH(sizeQRLabel)
		}

		tx, ty := marginX+colW+6, y0
		p.font("", sizeText)
		for _, ln := range hint {
			p.text(tx, ty, textW, "L", ln)
			ty += lineH(sizeText)
		}
		ty += 1
		p.font("", sizeURL)
		p.color(colLink)
		for _, ln := range url {
			p.text(tx, ty, textW, "L", ln)
			ty += lineH(sizeURL)
		}
		p.f.LinkString(tx, y0, textW, ty-y0, q.URL)
		p.color(colText)
		p.y = max(ly+2, ty+2)
	}
}

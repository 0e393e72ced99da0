package ctl

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress reports a wait: on a terminal a bar redrawn in place with the lines above it, elsewhere
// plain lines only (logs and pipes get no control characters).
type progress struct {
	w           io.Writer
	interactive bool
	now         func() time.Time
	start       time.Time
	total       int
	done        int
	status      string
	drawn       bool
}

func newProgress(w io.Writer, interactive bool, now func() time.Time, total int) *progress {
	return &progress{w: w, interactive: interactive, now: now, start: now(), total: total}
}

// printf prints one line (above the bar on a terminal).
func (p *progress) printf(format string, args ...any) {
	p.clear()
	fmt.Fprintf(p.w, format+"\n", args...)
	p.draw()
}

// update sets the count of settled items and the status text and redraws the bar.
func (p *progress) update(done int, status string) {
	p.done, p.status = done, status
	p.draw()
}

// tick redraws the bar for the elapsed time.
func (p *progress) tick() { p.draw() }

func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

func (p *progress) draw() {
	if !p.interactive {
		return
	}
	const width = 24
	filled := 0
	if p.total > 0 {
		filled = width * p.done / p.total
	}
	bar := strings.Repeat("=", filled)
	if filled < width {
		bar += ">" + strings.Repeat(" ", width-filled-1)
	}
	elapsed := p.now().Sub(p.start).Round(time.Second)
	fmt.Fprintf(p.w, "\r\033[K[%s] %d/%d  %s  %s", bar, p.done, p.total, elapsed, p.status)
	p.drawn = true
}

// finish removes the bar.
func (p *progress) finish() { p.clear() }

package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// pullProgress shows a pull's download progress: a bar redrawn in place on
// a terminal, a line every few seconds otherwise (logs, CI).
type pullProgress struct {
	w     io.Writer
	ref   string
	tty   bool
	mu    sync.Mutex
	last  time.Time
	done  int64
	total int64
	drawn bool
}

// progressInterval is how often a line is printed when not on a terminal.
const progressInterval = 2 * time.Second

func newPullProgress(w io.Writer, ref string) *pullProgress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &pullProgress{w: w, ref: ref, tty: tty, last: time.Now()}
}

// update receives progress from the puller.
func (p *pullProgress) update(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.total = done, total
	now := time.Now()
	switch {
	case p.tty && now.Sub(p.last) >= 100*time.Millisecond:
		fmt.Fprintf(p.w, "\r%s", progressLine(p.ref, done, total, true))
		p.last, p.drawn = now, true
	case !p.tty && now.Sub(p.last) >= progressInterval:
		fmt.Fprintln(p.w, progressLine(p.ref, done, total, false))
		p.last = now
	}
}

// finish ends the progress display with the final figures.
func (p *pullProgress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.total == 0 {
		return // nothing was downloaded
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\n", progressLine(p.ref, p.done, p.total, true))
		return
	}
	fmt.Fprintln(p.w, progressLine(p.ref, p.done, p.total, false))
}

// progressLine formats "ref [=====>    ] 42% 1.2 MiB/2.9 MiB" (bar only on
// a terminal).
func progressLine(ref string, done, total int64, bar bool) string {
	pct := 100
	if total > 0 {
		pct = int(done * 100 / total)
	}
	sizes := fmt.Sprintf("%3d%% %s/%s", pct, humanSize(done), humanSize(total))
	if !bar {
		return fmt.Sprintf("  %s: downloaded %s", ref, sizes)
	}
	const width = 30
	n := pct * width / 100
	b := strings.Repeat("=", n)
	if n < width {
		b += ">" + strings.Repeat(" ", width-n-1)
	}
	return fmt.Sprintf("%s [%s] %s", ref, b, sizes)
}

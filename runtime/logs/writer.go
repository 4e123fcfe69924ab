package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Stream names one of a container's output streams.
type Stream string

// The two streams a container writes.
const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// Tags of a CRI log entry.
const (
	tagFull    = "F"
	tagPartial = "P"
)

// DefaultMaxLineSize is the longest content of one log entry; longer lines are
// split into partial (P) entries of this size, as containerd does with its
// default max_container_log_line_size.
const DefaultMaxLineSize = 16 * 1024

// timestampFormat always has nine fractional digits so entries sort and
// align (containerd's format; RFC3339Nano would drop trailing zeros).
const timestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Writer serializes CRI log entries from several streams into one file.
// It is safe for concurrent use: each entry is written with a single Write
// call under a lock, so entries of stdout and stderr never interleave.
// The Writer does not own the underlying io.Writer.
type Writer struct {
	mu      sync.Mutex
	out     io.Writer
	now     func() time.Time
	maxLine int
}

// NewWriter returns a Writer appending entries to out, time-stamped with the
// wall clock and splitting lines at DefaultMaxLineSize.
func NewWriter(out io.Writer) *Writer {
	return &Writer{out: out, now: time.Now, maxLine: DefaultMaxLineSize}
}

// WithClock replaces the clock (for tests) and returns w.
func (w *Writer) WithClock(now func() time.Time) *Writer {
	w.now = now
	return w
}

// WithMaxLineSize sets the longest entry content (for tests) and returns w.
func (w *Writer) WithMaxLineSize(n int) *Writer {
	if n > 0 {
		w.maxLine = n
	}
	return w
}

// writeEntry writes one entry with the given stream, tag and content (which
// must not contain a newline).
func (w *Writer) writeEntry(stream Stream, tag string, content []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	ts := w.now().UTC().Format(timestampFormat)
	buf := make([]byte, 0, len(ts)+len(stream)+len(tag)+len(content)+4)
	buf = append(buf, ts...)
	buf = append(buf, ' ')
	buf = append(buf, stream...)
	buf = append(buf, ' ')
	buf = append(buf, tag...)
	buf = append(buf, ' ')
	buf = append(buf, content...)
	buf = append(buf, '\n')
	if _, err := w.out.Write(buf); err != nil {
		return fmt.Errorf("write %s log entry: %w", stream, err)
	}
	return nil
}

// readChunk is Copy's read buffer, and the most a LineWriter keeps of an
// unfinished line's buffer between lines. Most lines are short, so a
// buffer of the longest entry (16 KiB) would mostly be idle memory; a
// longer line is gathered from several reads instead.
const readChunk = 2048

// Copy reads r until EOF and writes each line as an entry of stream. Lines
// longer than the maximum become partial entries; a trailing line without a
// newline at EOF is written as a full entry (containerd does the same). It
// returns nil at EOF and the first read or write error otherwise (a read
// end closed under it gives an error wrapping os.ErrClosed).
func (w *Writer) Copy(stream Stream, r io.Reader) error {
	lw := w.Lines(stream)
	buf := make([]byte, min(w.maxLine, readChunk))
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if werr := lw.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err != nil {
			if werr := lw.Flush(); werr != nil {
				return werr
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read %s: %w", stream, err)
		}
	}
}

// Lines returns a LineWriter writing the entries of stream.
func (w *Writer) Lines(stream Stream) *LineWriter {
	return &LineWriter{w: w, stream: stream}
}

// LineWriter turns the output of one stream, written to it in pieces of any
// size, into entries: one per line, a line longer than the Writer's maximum
// split into partial entries. It holds only the start of a line still
// waiting for its end, so a caller can read with a shared buffer and keep
// nothing per stream between reads. A LineWriter is used by one goroutine at
// a time.
type LineWriter struct {
	w      *Writer
	stream Stream
	long   []byte // the start of an unfinished line
}

// Write writes an entry for each line p ends and keeps the rest of p for
// the next call. The returned error is the first write error of an entry.
func (lw *LineWriter) Write(p []byte) error {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			lw.long = append(lw.long, p...)
			return lw.split()
		}
		line := p[:i]
		p = p[i+1:]
		if len(lw.long) == 0 && len(line) < lw.w.maxLine {
			if err := lw.w.writeEntry(lw.stream, tagFull, trimCR(line)); err != nil {
				return err
			}
			continue
		}
		lw.long = append(lw.long, line...)
		if err := lw.split(); err != nil {
			return err
		}
		if err := lw.w.writeEntry(lw.stream, tagFull, trimCR(lw.long)); err != nil {
			return err
		}
		lw.release()
	}
	return nil
}

// Flush writes the unfinished line, if any, as a full entry: the stream
// ended without a final newline.
func (lw *LineWriter) Flush() error {
	if len(lw.long) == 0 {
		return nil
	}
	err := lw.w.writeEntry(lw.stream, tagFull, lw.long)
	lw.release()
	return err
}

// split writes maximum-size partial entries while the unfinished line is
// at least the maximum long. A line of exactly a multiple of the maximum
// thus ends with an empty full entry, as containerd writes it.
func (lw *LineWriter) split() error {
	for len(lw.long) >= lw.w.maxLine {
		if err := lw.w.writeEntry(lw.stream, tagPartial, lw.long[:lw.w.maxLine]); err != nil {
			return err
		}
		lw.long = append(lw.long[:0], lw.long[lw.w.maxLine:]...)
	}
	return nil
}

// release forgets the unfinished line, giving back a buffer that grew for
// a long line rather than keeping it for the stream's life.
func (lw *LineWriter) release() {
	if cap(lw.long) > readChunk {
		lw.long = nil
		return
	}
	lw.long = lw.long[:0]
}

// trimCR drops the carriage return of a CRLF line ending, as
// bufio.Reader.ReadLine does.
func trimCR(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		return line[:n-1]
	}
	return line
}

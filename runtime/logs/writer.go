package logs

import (
	"bufio"
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

// readChunk is the read buffer of one log stream. Most lines are short and
// most containers log little, so a buffer of the longest entry per stream
// (two per container, 16 KiB each) was mostly idle memory; a longer line
// is gathered from several reads instead.
const readChunk = 2048

// Copy reads r until EOF and writes each line as an entry of stream. Lines
// longer than the maximum become partial entries; a trailing line without a
// newline at EOF is written as a full entry (containerd does the same). It
// returns nil at EOF and the first read or write error otherwise; a read
// error from a closed pipe (os.ErrClosed) also ends the copy without error.
func (w *Writer) Copy(stream Stream, r io.Reader) error {
	br := bufio.NewReaderSize(r, min(w.maxLine, readChunk))
	var long []byte // the start of a line longer than the read buffer
	for {
		frag, isPrefix, err := br.ReadLine()
		if len(frag) > 0 || (err == nil && !isPrefix) {
			if !isPrefix && len(long) == 0 {
				if werr := w.writeEntry(stream, tagFull, frag); werr != nil {
					return werr
				}
			} else {
				long = append(long, frag...)
				for len(long) >= w.maxLine {
					if werr := w.writeEntry(stream, tagPartial, long[:w.maxLine]); werr != nil {
						return werr
					}
					long = append(long[:0], long[w.maxLine:]...)
				}
				if !isPrefix {
					if werr := w.writeEntry(stream, tagFull, long); werr != nil {
						return werr
					}
					long = long[:0]
				}
			}
		}
		if err != nil {
			if len(long) > 0 {
				if werr := w.writeEntry(stream, tagFull, long); werr != nil {
					return werr
				}
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read %s: %w", stream, err)
		}
	}
}

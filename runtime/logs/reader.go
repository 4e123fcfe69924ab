package logs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// ReadOptions select what ReadLogs prints; they mirror kubectl logs' flags.
type ReadOptions struct {
	// Follow keeps reading as the file grows until ctx is done or Done is
	// closed and the file is drained.
	Follow bool
	// TailLines prints only the last N entries; a negative value prints all.
	// The zero value prints nothing before following, like --tail=0.
	TailLines int64
	// Timestamps prefixes each printed entry with its RFC3339Nano timestamp.
	Timestamps bool
	// Since skips entries older than this time; the zero value skips none.
	Since time.Time
	// LimitBytes stops after this many bytes have been printed; 0 means no limit.
	LimitBytes int64
	// Done, in follow mode, tells that the container exited: ReadLogs reads
	// what is left in the file once more and returns. Nil means never.
	Done <-chan struct{}
}

// followPoll is how often a followed file is checked for new data. Polling
// keeps the reader free of inotify state; 100 ms is below what a person
// watching `kubectl logs -f` notices.
const followPoll = 100 * time.Millisecond

// errLimitReached ends reading once LimitBytes have been printed.
var errLimitReached = errors.New("log byte limit reached")

// ErrMalformed is wrapped by errors for lines that are not CRI log entries.
var ErrMalformed = errors.New("malformed CRI log entry")

// Entry is one parsed CRI log line.
type Entry struct {
	Time    time.Time
	Stream  Stream
	Partial bool
	Content []byte
}

// ParseEntry parses one CRI log line without its trailing newline.
func ParseEntry(line []byte) (Entry, error) {
	var e Entry
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return e, fmt.Errorf("%w: no timestamp in %q", ErrMalformed, line)
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return e, fmt.Errorf("%w: timestamp %q: %v", ErrMalformed, ts, err)
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return e, fmt.Errorf("%w: no stream in %q", ErrMalformed, line)
	}
	switch Stream(stream) {
	case Stdout, Stderr:
	default:
		return e, fmt.Errorf("%w: unknown stream %q", ErrMalformed, stream)
	}
	tag, content, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		// An empty full line may be written without the final space by
		// other writers; accept "F" alone.
		tag, content = rest, nil
	}
	switch string(tag) {
	case tagFull:
	case tagPartial:
		e.Partial = true
	default:
		return e, fmt.Errorf("%w: unknown tag %q", ErrMalformed, tag)
	}
	e.Time, e.Stream, e.Content = t, Stream(stream), content
	return e, nil
}

// ReadLogs prints the container log at path to stdout and stderr (by each
// entry's stream) as kubectl logs shows it: partial entries are printed
// without a newline so that they join the following entry. Malformed lines
// are skipped. It blocks while following; it returns nil at the end of the
// file (or after Done, or when LimitBytes is reached) and ctx.Err() when ctx
// ends first.
func ReadLogs(ctx context.Context, path string, opts ReadOptions, stdout, stderr io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open container log: %w", err)
	}
	defer func() { f.Close() }() // f changes when the log rotates
	if opts.TailLines >= 0 {
		off, err := tailOffset(f, opts.TailLines)
		if err != nil {
			return fmt.Errorf("find tail of container log: %w", err)
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return fmt.Errorf("seek container log: %w", err)
		}
	}
	p := &printer{opts: opts, stdout: stdout, stderr: stderr}
	br := bufio.NewReader(f)
	var pending []byte // an entry whose newline has not been written yet
	var done <-chan struct{} = opts.Done
	draining := false
	for {
		chunk, err := br.ReadBytes('\n')
		pending = append(pending, chunk...)
		if err == nil {
			if perr := p.print(pending[:len(pending)-1]); perr != nil {
				if errors.Is(perr, errLimitReached) {
					return nil
				}
				return perr
			}
			pending = pending[:0]
			continue
		}
		if !errors.Is(err, io.EOF) {
			return fmt.Errorf("read container log: %w", err)
		}
		if !opts.Follow {
			return nil
		}
		// At the end of a file that was rotated away, go on with the new
		// file; the writer renames a file only after its last entry, so
		// reading the old one to its end first loses nothing.
		if next, rotated, rerr := reopenIfRotated(f, path); rerr != nil {
			return rerr
		} else if rotated {
			if rest, err := io.ReadAll(br); err == nil && len(rest) > 0 {
				// Entries written between our EOF and the rename.
				br = bufio.NewReader(io.MultiReader(bytes.NewReader(rest), next))
			} else {
				br = bufio.NewReader(next)
			}
			f.Close()
			f = next
			continue
		}
		if draining {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			// Read once more what the container wrote before it exited.
			draining = true
			done = nil
		case <-time.After(followPoll):
		}
	}
}

// printer formats entries and enforces Since and LimitBytes.
type printer struct {
	opts           ReadOptions
	stdout, stderr io.Writer
	written        int64
}

func (p *printer) print(line []byte) error {
	e, err := ParseEntry(line)
	if err != nil {
		return nil // kubelet also skips lines it cannot parse
	}
	if !p.opts.Since.IsZero() && e.Time.Before(p.opts.Since) {
		return nil
	}
	out := p.stdout
	if e.Stream == Stderr {
		out = p.stderr
	}
	var buf []byte
	if p.opts.Timestamps {
		buf = append(buf, e.Time.Format(time.RFC3339Nano)...)
		buf = append(buf, ' ')
	}
	buf = append(buf, e.Content...)
	if !e.Partial {
		buf = append(buf, '\n')
	}
	limited := false
	if p.opts.LimitBytes > 0 {
		left := p.opts.LimitBytes - p.written
		if int64(len(buf)) >= left {
			buf, limited = buf[:left], true
		}
	}
	n, err := out.Write(buf)
	p.written += int64(n)
	if err != nil {
		return fmt.Errorf("write log output: %w", err)
	}
	if limited {
		return errLimitReached
	}
	return nil
}

// tailOffset returns the offset where the last n lines of f begin, reading
// backwards in blocks so that a large file is not read whole. A last line
// still missing its newline counts as a line.
func tailOffset(f *os.File, n int64) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	if n == 0 || size == 0 {
		return size, nil
	}
	const block = 4096
	buf := make([]byte, block)
	// end is one past the last byte that may hold a line separator: the
	// file's final newline ends the last line rather than separating it.
	end := size
	var last [1]byte
	if _, err := f.ReadAt(last[:], size-1); err != nil {
		return 0, err
	}
	if last[0] == '\n' {
		end = size - 1
	}
	var seen int64
	for pos := end; pos > 0; {
		start := max(pos-block, 0)
		chunk := buf[:pos-start]
		if _, err := f.ReadAt(chunk, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] == '\n' {
				seen++
				if seen == n {
					return start + int64(i) + 1, nil
				}
			}
		}
		pos = start
	}
	return 0, nil
}

// reopenIfRotated opens the file that follows f when path no longer names
// f (the writer rotated it): the next rotated file still on disk, or the
// current file at path. A missing path (rotation in progress) is not a
// rotation yet. Files rotated and pruned while the reader slept are lost,
// as with kubelet.
func reopenIfRotated(f *os.File, path string) (*os.File, bool, error) {
	cur, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("stat container log: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil || os.SameFile(cur, st) {
		return nil, false, nil
	}
	next := path
	if rotated, err := RotatedFiles(path); err == nil {
		for i, r := range rotated {
			if rs, err := os.Stat(r); err == nil && os.SameFile(cur, rs) && i+1 < len(rotated) {
				next = rotated[i+1]
				break
			}
		}
	}
	nf, err := os.Open(next)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil // pruned meanwhile: retry at the next poll
	}
	if err != nil {
		return nil, false, fmt.Errorf("open rotated container log: %w", err)
	}
	return nf, true, nil
}

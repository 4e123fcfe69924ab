package runtime

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openFIFO makes a FIFO and opens its read end as the runtime does
// (non-blocking) and a write end.
func openFIFO(t *testing.T) (r, w *os.File) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "out")
	if err := unix.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(p, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	w, err = os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return r, w
}

func TestCopyFIFO(t *testing.T) {
	r, w := openFIFO(t)
	defer r.Close()
	want := strings.Repeat("0123456789abcdef", 3*fifoChunk/16) + "tail"
	go func() {
		// In pieces, with pauses, so that the copier waits between them.
		for in := want; len(in) > 0; {
			n := min(1000, len(in))
			w.WriteString(in[:n])
			in = in[n:]
			time.Sleep(time.Millisecond)
		}
		w.Close()
	}()
	var got bytes.Buffer
	if err := copyFIFO(r, func(p []byte) error { got.Write(p); return nil }); err != nil {
		t.Fatalf("copyFIFO: %v", err)
	}
	if got.String() != want {
		t.Errorf("copied %d bytes, want %d", got.Len(), len(want))
	}
}

func TestCopyFIFOEnds(t *testing.T) {
	t.Run("closed while waiting", func(t *testing.T) {
		r, w := openFIFO(t)
		defer w.Close()
		done := make(chan error, 1)
		go func() { done <- copyFIFO(r, func([]byte) error { return nil }) }()
		time.Sleep(50 * time.Millisecond)
		r.Close()
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrClosed) {
				t.Errorf("copyFIFO after Close: %v, want os.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("copyFIFO still waits after Close")
		}
	})
	t.Run("sink fails", func(t *testing.T) {
		r, w := openFIFO(t)
		defer r.Close()
		defer w.Close()
		w.WriteString("x")
		boom := errors.New("disk full")
		if err := copyFIFO(r, func([]byte) error { return boom }); !errors.Is(err, boom) {
			t.Errorf("copyFIFO: %v, want the sink's error", err)
		}
	})
}

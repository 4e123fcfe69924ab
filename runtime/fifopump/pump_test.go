package fifopump

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fifo makes a FIFO and returns its non-blocking read end (a raw
// descriptor, as the Pump takes it) and a write end.
func fifo(t *testing.T, dir, name string) (int, *os.File) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := unix.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		unix.Close(r)
		t.Fatal(err)
	}
	return r, w
}

func newPump(t *testing.T, size int) *Pump {
	t.Helper()
	p, err := New(size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

type result struct {
	mu   sync.Mutex
	data bytes.Buffer
	err  error
	done chan struct{}
}

func (r *result) sink(b []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.data.Write(b)
	return nil
}

func (r *result) finish(err error) { r.err = err; close(r.done) }

func (r *result) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(10 * time.Second):
		t.Fatal("done was not called")
		return nil
	}
}

// TestManySources copies 50 FIFOs written concurrently, in small pieces,
// with one goroutine and a small buffer: every byte arrives, in order,
// and each source ends with EOF.
func TestManySources(t *testing.T) {
	dir := t.TempDir()
	before := runtime.NumGoroutine()
	p := newPump(t, 64)
	const n = 50
	results := make([]*result, n)
	writers := make([]*os.File, n)
	for i := range n {
		fd, w := fifo(t, dir, fmt.Sprint(i))
		results[i] = &result{done: make(chan struct{})}
		if _, err := p.Add(fd, results[i].sink, results[i].finish); err != nil {
			t.Fatal(err)
		}
		writers[i] = w
	}
	if g := runtime.NumGoroutine() - before; g > 1 {
		t.Errorf("%d goroutines for %d sources, want 1", g, n)
	}
	want := func(i int) string {
		var b bytes.Buffer
		for j := range 200 {
			fmt.Fprintf(&b, "source %d line %d\n", i, j)
		}
		return b.String()
	}
	var wg sync.WaitGroup
	for i, w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := want(i)
			for len(s) > 0 {
				k := min(37, len(s))
				w.WriteString(s[:k])
				s = s[k:]
			}
			w.Close()
		}()
	}
	wg.Wait()
	for i, r := range results {
		if err := r.wait(t); err != nil {
			t.Errorf("source %d: done(%v), want EOF (nil)", i, err)
		}
		if got := r.data.String(); got != want(i) {
			t.Errorf("source %d: got %d bytes, want %d", i, len(got), len(want(i)))
		}
	}
}

func TestRemove(t *testing.T) {
	p := newPump(t, 4096)
	fd, w := fifo(t, t.TempDir(), "out")
	defer w.Close()
	r := &result{done: make(chan struct{})}
	s, err := p.Add(fd, r.sink, r.finish)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString("before\n")
	time.Sleep(50 * time.Millisecond)
	s.Remove()
	if err := r.wait(t); !errors.Is(err, ErrRemoved) {
		t.Errorf("done(%v), want ErrRemoved", err)
	}
	if r.data.String() != "before\n" {
		t.Errorf("read %q", r.data.String())
	}
	// The read end is closed: the writer has no reader left.
	if _, err := w.WriteString("after\n"); !errors.Is(err, unix.EPIPE) {
		t.Errorf("write after Remove: %v, want EPIPE", err)
	}
	s.Remove() // a second Remove returns at once
}

func TestSinkError(t *testing.T) {
	p := newPump(t, 4096)
	fd, w := fifo(t, t.TempDir(), "out")
	defer w.Close()
	boom := errors.New("disk full")
	done := make(chan error, 1)
	if _, err := p.Add(fd, func([]byte) error { return boom }, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	w.WriteString("x")
	select {
	case err := <-done:
		if !errors.Is(err, boom) {
			t.Errorf("done(%v), want the sink's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("done was not called")
	}
}

func TestClose(t *testing.T) {
	p, err := New(4096)
	if err != nil {
		t.Fatal(err)
	}
	fd, w := fifo(t, t.TempDir(), "out")
	defer w.Close()
	r := &result{done: make(chan struct{})}
	s, err := p.Add(fd, r.sink, r.finish)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if err := r.wait(t); !errors.Is(err, ErrClosed) {
		t.Errorf("done(%v), want ErrClosed", err)
	}
	s.Remove() // after Close: returns at once
	fd2, w2 := fifo(t, t.TempDir(), "late")
	defer w2.Close()
	defer unix.Close(fd2)
	if _, err := p.Add(fd2, r.sink, func(error) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Close: %v, want ErrClosed", err)
	}
	p.Close() // idempotent
}

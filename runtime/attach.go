package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"kedge.dev/kedge/runtime/logs"
)

// stdinFifo is the FIFO of a container with Stdin and no TTY. The
// container holds it open read-write, so it never reads EOF while no
// client is attached, also across a restart of the runtime.
const stdinFifo = "stdin.fifo"

// attachBuffer is how many chunks of output an attached client may lag
// behind before chunks are dropped for it: a slow client must never stall
// the container or its log.
const attachBuffer = 256

// attachIO is a container's side of attach: the live output fan-out, the
// console of a TTY container, the log writer its copiers share, and the
// stdin of a StdinOnce container. It is guarded by the container's mu,
// except hub, which is safe on its own, and once, which has its own lock.
type attachIO struct {
	hub     outputHub
	console *os.File     // pty master of a TTY container; nil after adoption
	log     *logs.Writer // set by attachLogs
	once    stdinOnce
}

// stdinOnce is the standard input of a StdinOnce container. The process
// reads the FIFO through a read-only end, so it reads EOF once no writer
// is left: the runtime keeps one (keep) until the first Attach that feeds
// stdin ends, then closes it together with the writers of the sessions
// still attached. keep is nil once stdin is closed for good, and also in
// a runtime that adopted the container: the end it kept was gone with the
// process that held it, and the container has read EOF then. A separate
// lock from the container's, which a stop holds for the grace period.
type stdinOnce struct {
	mu      sync.Mutex
	keep    *os.File
	writers map[*os.File]struct{}
	// release, if set, drops the copy of keep the exit recorder holds
	// (heldFiles), so that closing keep really closes stdin.
	release func()
}

// openWriter opens a writer for one attach session, or returns nil when
// stdin is closed for good. The writer is closed by close.
func (s *stdinOnce) openWriter(fifo string) (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keep == nil {
		return nil, nil
	}
	// Non-blocking: the container holds a reader, so this open succeeds,
	// and the poller serves the writes.
	f, err := os.OpenFile(fifo, os.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if s.writers == nil {
		s.writers = map[*os.File]struct{}{}
	}
	s.writers[f] = struct{}{}
	return f, nil
}

// close closes stdin for good: the kept end and every session's writer
// (a copy still writing fails and ends). It is idempotent.
func (s *stdinOnce) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keep != nil {
		s.keep.Close()
		s.keep = nil
		if s.release != nil {
			s.release()
			s.release = nil
		}
	}
	for f := range s.writers {
		f.Close()
	}
	s.writers = nil
}

// openStdinOnce (re)creates the FIFO at p and returns its read end for
// the process (blocking, as a process expects its stdin) and a write end
// for the runtime to keep.
func openStdinOnce(p string) (r, w *os.File, err error) {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	if err := unix.Mkfifo(p, 0o600); err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", filepath.Base(p), err)
	}
	// The read end first and non-blocking, so that neither open waits for
	// the other side.
	rfd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", filepath.Base(p), err)
	}
	if err := unix.SetNonblock(rfd, false); err != nil {
		unix.Close(rfd)
		return nil, nil, fmt.Errorf("open %s: %w", filepath.Base(p), err)
	}
	r = os.NewFile(uintptr(rfd), filepath.Base(p))
	w, err = os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		r.Close()
		return nil, nil, fmt.Errorf("open %s: %w", filepath.Base(p), err)
	}
	return r, w, nil
}

// outputHub fans a container's live output out to attached clients. Its
// methods are safe for concurrent use.
type outputHub struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	stream logs.Stream // stdout, or stderr
	ch     chan []byte
}

// tee returns a reader that also publishes what it reads from r as
// stream. An EIO (a console whose process ended) reads as EOF.
func (h *outputHub) tee(stream logs.Stream, r io.Reader) io.Reader {
	return readerFunc(func(p []byte) (int, error) {
		n, err := r.Read(p)
		if n > 0 {
			h.publish(stream, p[:n])
		}
		if errors.Is(err, unix.EIO) {
			err = io.EOF
		}
		return n, err
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func (h *outputHub) publish(stream logs.Stream, p []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) == 0 {
		return
	}
	b := append([]byte(nil), p...)
	for s := range h.subs {
		if s.stream != stream {
			continue
		}
		select {
		case s.ch <- b:
		default: // the client lags: drop rather than block the container
		}
	}
}

func (h *outputHub) subscribe(stream logs.Stream) *subscriber {
	s := &subscriber{stream: stream, ch: make(chan []byte, attachBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[*subscriber]struct{}{}
	}
	h.subs[s] = struct{}{}
	return s
}

func (h *outputHub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, s)
}

// prepareStdio sets what the container's init gets as standard input:
// with TTY a console socket (the init sends back the pty master, which
// attachConsole receives from the returned parent end), with Stdin the
// stdin FIFO opened read-write (so it never reads EOF), with StdinOnce too
// its read end, the runtime keeping a writer (see stdinOnce). Callers hold
// c.mu and close parent.
func prepareStdio(c *container, proc *libcontainer.Process) (parent *os.File, err error) {
	switch {
	case c.h.Spec.TTY:
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("console socket pair: %w", err)
		}
		// The child end is the init's; libcontainer passes it on and
		// closes its copy, ours goes when the parent end does.
		proc.ConsoleSocket = os.NewFile(uintptr(fds[1]), "console-child")
		return os.NewFile(uintptr(fds[0]), "console-parent"), nil
	case c.h.Spec.Stdin && c.h.Spec.StdinOnce:
		r, w, err := openStdinOnce(filepath.Join(c.dir, stdinFifo))
		if err != nil {
			return nil, err
		}
		proc.Stdin = r // closed with proc's files after the start
		c.io.once.mu.Lock()
		c.io.once.keep = w
		c.io.once.mu.Unlock()
		// Closed with the output readers when the container ends or fails
		// to start, so an end never attached to does not leak.
		c.readers = append(c.readers, w)
	case c.h.Spec.Stdin:
		f, err := openFifoWriter(filepath.Join(c.dir, stdinFifo))
		if err != nil {
			return nil, err
		}
		// The container keeps the FIFO open read-write; ours closes with
		// proc's files after the start (see start).
		proc.Stdin = f
	}
	return nil, nil
}

// attachConsole receives the init's pty master and copies its output to
// the log as stdout (and to attached clients). Callers hold c.mu.
func (r *Runtime) attachConsole(c *container, parent *os.File) error {
	master, err := recvFile(parent)
	if err != nil {
		return fmt.Errorf("receive console: %w", err)
	}
	r.copyConsole(c, master)
	return nil
}

// copyConsole makes master c's console and copies its output to the log
// as stdout (and to attached clients). Callers hold c.mu.
func (r *Runtime) copyConsole(c *container, master *os.File) {
	c.io.console = master
	c.readers = append(c.readers, master)
	w := c.io.log
	if w == nil {
		w = logs.NewWriter(io.Discard)
	}
	c.copiers.Add(1)
	go func() {
		defer c.copiers.Done()
		if err := w.Copy(logs.Stdout, c.io.hub.tee(logs.Stdout, master)); err != nil && !errors.Is(err, os.ErrClosed) {
			r.log.Warn("copying container console", "id", c.h.Spec.ID, "err", err)
		}
	}()
}

// Names of the files the exit recorder keeps for a container.
const (
	heldConsole   = "console"    // a TTY container's pty master
	heldStdinOnce = "stdin-once" // the writer a StdinOnce container's stdin waits on
)

// heldTimeout bounds a call to the exit recorder's file store.
const heldTimeout = 5 * time.Second

// holdFiles gives the exit recorder copies of the files that must outlive
// this process for c to keep running unchanged: without them a TTY
// container's terminal would hang up, and a StdinOnce container's stdin
// would end, when kedge stops. Callers hold c.mu.
func (r *Runtime) holdFiles(c *container) {
	if r.exits == nil {
		return
	}
	var names []string
	var files []*os.File
	if c.io.console != nil {
		names, files = append(names, heldConsole), append(files, c.io.console)
	}
	c.io.once.mu.Lock()
	if c.io.once.keep != nil {
		names, files = append(names, heldStdinOnce), append(files, c.io.once.keep)
		c.io.once.release = r.releaseHeld(c.h.Spec.ID)
	}
	c.io.once.mu.Unlock()
	if len(files) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), heldTimeout)
	defer cancel()
	if err := r.exits.StoreFiles(ctx, c.h.Spec.ID, names, files); err != nil {
		r.log.Warn("the container's terminal or stdin will not survive a restart of kedge", "id", c.h.Spec.ID, "err", err)
	}
}

// takeHeldFiles restores, for an adopted container, the files the exit
// recorder kept: its console, whose output is copied to the log again,
// and a StdinOnce writer. Callers hold c.mu.
func (r *Runtime) takeHeldFiles(c *container) {
	if r.exits == nil || (!c.h.Spec.TTY && !c.h.Spec.StdinOnce) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), heldTimeout)
	defer cancel()
	files, err := r.exits.TakeFiles(ctx, c.h.Spec.ID)
	if err != nil {
		r.log.Warn("taking back the container's terminal or stdin", "id", c.h.Spec.ID, "err", err)
		return
	}
	if f := files[heldConsole]; f != nil {
		// Non-blocking, so that Go's poller serves the reads and
		// detachLogs can interrupt the copy.
		fd, err := unix.Dup(int(f.Fd()))
		f.Close()
		if err == nil {
			unix.CloseOnExec(fd)
			if err := unix.SetNonblock(fd, true); err != nil {
				r.log.Warn("console of adopted container", "id", c.h.Spec.ID, "err", err)
			}
			r.copyConsole(c, os.NewFile(uintptr(fd), "console"))
		}
	}
	if f := files[heldStdinOnce]; f != nil {
		c.io.once.mu.Lock()
		c.io.once.keep = f
		c.io.once.release = r.releaseHeld(c.h.Spec.ID)
		c.io.once.mu.Unlock()
		c.readers = append(c.readers, f)
	}
}

// releaseHeld returns a func that makes the exit recorder close what it
// keeps for container id.
func (r *Runtime) releaseHeld(id string) func() {
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), heldTimeout)
		defer cancel()
		if err := r.exits.DropFiles(ctx, id); err != nil {
			r.log.Warn("releasing the container's held stdin", "id", id, "err", err)
		}
	}
}

// Attach joins sio to the main process of running container id: its
// output from now on goes to sio.Stdout (and sio.Stderr without a TTY),
// sio.Stdin feeds its standard input when the container was made with
// Stdin or TTY, and sio.Resize resizes its terminal. Attach returns when
// the container exits (after passing on its last output) or ctx ends.
// Output a client is too slow for is dropped for that client. A TTY
// container adopted after a runtime restart has lost its console: Attach
// then fails with ErrInvalidState. With StdinOnce, the first Attach with a
// sio.Stdin closes the container's stdin when sio.Stdin ends or Attach
// returns, whichever is first (CRI's "stdin is closed after the first
// attach session completes"); later sessions get the output only.
func (r *Runtime) Attach(ctx context.Context, id string, sio ExecIO) error {
	c, err := r.get(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.removed || c.h.State != StateRunning || c.exited == nil {
		c.mu.Unlock()
		return fmt.Errorf("attach to container %s in state %s: %w", id, c.h.State, ErrInvalidState)
	}
	spec, console, exited, dir := c.h.Spec, c.io.console, c.exited, c.dir
	c.mu.Unlock()
	if spec.TTY && console == nil {
		return fmt.Errorf("attach to %s: its terminal was lost when the runtime restarted without an exit recorder: %w", id, ErrInvalidState)
	}

	var wg sync.WaitGroup
	done := make(chan struct{})
	forward := func(stream logs.Stream, w io.Writer) {
		if w == nil {
			return
		}
		s := c.io.hub.subscribe(stream)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.io.hub.unsubscribe(s)
			for {
				select {
				case b := <-s.ch:
					if _, err := w.Write(b); err != nil {
						return
					}
				case <-done:
					// Pass on what was published before the end.
					for {
						select {
						case b := <-s.ch:
							if _, err := w.Write(b); err != nil {
								return
							}
						default:
							return
						}
					}
				}
			}
		}()
	}
	forward(logs.Stdout, sio.Stdout)
	if !spec.TTY {
		forward(logs.Stderr, sio.Stderr)
	}

	if sio.Stdin != nil && (spec.TTY || spec.Stdin) {
		var in *os.File
		once := spec.StdinOnce && !spec.TTY
		switch {
		case spec.TTY:
			in = console
		case once:
			f, err := c.io.once.openWriter(filepath.Join(dir, stdinFifo))
			if err != nil {
				close(done)
				wg.Wait()
				return fmt.Errorf("attach to %s: open stdin: %w", id, err)
			}
			if f != nil {
				// This session uses stdin: its end closes stdin for good.
				defer c.io.once.close()
			}
			in = f
		default:
			// Non-blocking: the container holds a reader, so this open
			// succeeds, and the poller serves the writes.
			f, err := os.OpenFile(filepath.Join(dir, stdinFifo), os.O_WRONLY|unix.O_NONBLOCK, 0)
			if err != nil {
				close(done)
				wg.Wait()
				return fmt.Errorf("attach to %s: open stdin: %w", id, err)
			}
			defer f.Close()
			in = f
		}
		// Not waited for: it ends when the caller's Stdin does (see
		// ExecIO), or when Attach closes in.
		go func() {
			if in == nil {
				// Stdin is closed for good: read the client's input
				// anyway, so that it does not stall the connection.
				_, _ = io.Copy(io.Discard, sio.Stdin)
				return
			}
			_, _ = io.Copy(in, sio.Stdin)
			if once {
				c.io.once.close()
			}
		}()
	}
	if spec.TTY && sio.Resize != nil {
		if rc, err := console.SyscallConn(); err == nil {
			go func() {
				for sz := range sio.Resize {
					_ = rc.Control(func(fd uintptr) {
						_ = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Height, Col: sz.Width})
					})
				}
			}()
		}
	}

	var result error
	select {
	case <-exited:
	case <-ctx.Done():
		result = ctx.Err()
	}
	close(done)
	wg.Wait()
	return result
}

package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

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
// console of a TTY container, and the log writer its copiers share. It is
// guarded by the container's mu, except hub, which is safe on its own.
type attachIO struct {
	hub     outputHub
	console *os.File     // pty master of a TTY container; nil after adoption
	log     *logs.Writer // set by attachLogs
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
// stdin FIFO opened read-write. Callers hold c.mu and close parent.
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
	return nil
}

// Attach joins sio to the main process of running container id: its
// output from now on goes to sio.Stdout (and sio.Stderr without a TTY),
// sio.Stdin feeds its standard input when the container was made with
// Stdin or TTY, and sio.Resize resizes its terminal. Attach returns when
// the container exits (after passing on its last output) or ctx ends.
// Output a client is too slow for is dropped for that client. A TTY
// container adopted after a runtime restart has lost its console: Attach
// then fails with ErrInvalidState.
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
		return fmt.Errorf("attach to %s: its terminal was lost when the runtime restarted: %w", id, ErrInvalidState)
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
		if spec.TTY {
			in = console
		} else {
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
		// Not waited for: it ends when the caller's Stdin does (see ExecIO).
		go func() { _, _ = io.Copy(in, sio.Stdin) }()
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

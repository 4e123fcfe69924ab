package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"kedge.dev/kedge/runtime/rootfs"
)

// TerminalSize is a terminal's size in character cells.
type TerminalSize struct {
	Width, Height uint16
}

// ExecIO are the streams of a process run by Exec.
type ExecIO struct {
	// Stdin, when not nil, feeds the process's standard input; its EOF
	// closes that input. Exec does not wait for a Read that blocks: the
	// caller ends it (by closing its connection) after Exec returns.
	Stdin io.Reader
	// Stdout and Stderr receive the process's output; nil discards it.
	// With TTY, everything goes to Stdout and Stderr is unused.
	Stdout, Stderr io.Writer
	// TTY runs the process on a new pseudo-terminal of the container,
	// which becomes its controlling terminal.
	TTY bool
	// Resize, with TTY, carries terminal size changes; nil means none.
	Resize <-chan TerminalSize
}

// execDrainTimeout bounds the wait for output after the process exited:
// a background child that keeps stdout open must not hold the stream.
const execDrainTimeout = 2 * time.Second

// Exec runs cmd as an extra process in running container id, with the
// container's environment, user and working directory, and returns its
// exit code (128+signal when killed by a signal). The process is killed
// when ctx ends; Exec returns once it has been reaped and its output
// copied. The error wraps ErrInvalidState when the container is not
// running and ErrStartFailed when the process could not start.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, sio ExecIO) (int, error) {
	if len(cmd) == 0 {
		return -1, fmt.Errorf("exec in %s: %w: empty command", id, ErrInvalidSpec)
	}
	proc, lc, err := r.execProcess(id, cmd)
	if err != nil {
		return -1, err
	}
	var p *execStreams
	if sio.TTY {
		p, err = startWithConsole(lc, proc, sio)
	} else {
		p, err = startWithPipes(lc, proc, sio)
	}
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w: %s", id, ErrStartFailed, startMessage(err))
	}
	r.poke()
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = proc.Signal(unix.SIGKILL)
		case <-done:
		}
	}()
	ps, werr := proc.Wait()
	close(done)
	p.finish()
	code := exitCode(ps)
	if ps == nil {
		return -1, fmt.Errorf("exec in %s: wait: %w", id, werr)
	}
	if err := ctx.Err(); err != nil {
		return code, err
	}
	return code, nil
}

// execProcess builds the libcontainer process of an exec in container id.
func (r *Runtime) execProcess(id string, cmd []string) (*libcontainer.Process, *libcontainer.Container, error) {
	c, err := r.get(id)
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return nil, nil, fmt.Errorf("container %q: %w", id, ErrContainerNotFound)
	}
	if c.h.State != StateRunning || c.lc == nil {
		return nil, nil, fmt.Errorf("exec in container %s in state %s: %w", id, c.h.State, ErrInvalidState)
	}
	rec, err := r.images.Get(c.h.ImageID)
	if err != nil {
		return nil, nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	// The same identity as the container's process (runAsUser and
	// friends); capabilities, no_new_privs and seccomp come from the
	// container's libcontainer config.
	user, err := processUser(rootfs.NewLayout(c.dir).Merged, rec.User, c.h.Spec.Security)
	if err != nil {
		return nil, nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	cwd := c.h.Spec.WorkingDir
	if cwd == "" {
		cwd = rec.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	return &libcontainer.Process{
		Args:             cmd,
		Env:              mergeEnv(rec.Env, c.h.Spec.Env),
		Cwd:              cwd,
		UID:              user.Uid,
		GID:              user.Gid,
		AdditionalGroups: user.Sgids,
	}, c.lc, nil
}

// exitCode reads a wait status as a shell reports it.
func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// execStreams is the runtime's side of an exec'd process's I/O: the
// copiers and the files they read, closed by finish.
type execStreams struct {
	outputs sync.WaitGroup // copiers of output
	closers []*os.File     // our ends, closed after the drain
}

// finish waits for the output copiers (bounded by execDrainTimeout), then
// closes every file of ours, which ends copiers still blocked.
func (p *execStreams) finish() {
	done := make(chan struct{})
	go func() { p.outputs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(execDrainTimeout):
	}
	for _, f := range p.closers {
		f.Close()
	}
	<-done
}

// copyOut copies from f (ours) to w in a goroutine counted by outputs.
func (p *execStreams) copyOut(w io.Writer, f *os.File) {
	if w == nil {
		w = io.Discard
	}
	p.outputs.Add(1)
	go func() {
		defer p.outputs.Done()
		_, _ = io.Copy(w, f)
	}()
}

// copyIn copies the caller's stdin into f and closes f at EOF. It is not
// waited for: see ExecIO.Stdin.
func copyIn(f *os.File, in io.Reader) {
	go func() {
		_, _ = io.Copy(f, in)
		f.Close()
	}()
}

// startWithPipes starts proc with pipes for stdin, stdout and stderr.
func startWithPipes(lc *libcontainer.Container, proc *libcontainer.Process, sio ExecIO) (p *execStreams, err error) {
	p = &execStreams{}
	var theirs []*os.File
	defer func() {
		for _, f := range theirs {
			f.Close() // the child has its own copies
		}
		if err != nil {
			for _, f := range p.closers {
				f.Close()
			}
		}
	}()
	var stdinW *os.File
	if sio.Stdin != nil {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		theirs, stdinW = append(theirs, r), w
		proc.Stdin = r
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return p, err
	}
	theirs, p.closers = append(theirs, outW), append(p.closers, outR)
	errR, errW, err := os.Pipe()
	if err != nil {
		return p, err
	}
	theirs, p.closers = append(theirs, errW), append(p.closers, errR)
	proc.Stdout, proc.Stderr = outW, errW
	if err := lc.Start(proc); err != nil {
		if stdinW != nil {
			stdinW.Close()
		}
		return p, err
	}
	if stdinW != nil {
		copyIn(stdinW, sio.Stdin)
	}
	p.copyOut(sio.Stdout, outR)
	p.copyOut(sio.Stderr, errR)
	return p, nil
}

// startWithConsole starts proc on a new pseudo-terminal that libcontainer
// opens inside the container and hands back over a socket pair.
func startWithConsole(lc *libcontainer.Container, proc *libcontainer.Process, sio ExecIO) (*execStreams, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console socket pair: %w", err)
	}
	parent, child := os.NewFile(uintptr(fds[0]), "console-parent"), os.NewFile(uintptr(fds[1]), "console-child")
	defer parent.Close()
	proc.ConsoleSocket = child
	// Start returns once init has sent the console, so the size is set
	// before the process can read it when the first resize came early.
	err = lc.Start(proc)
	child.Close()
	if err != nil {
		return nil, err
	}
	master, err := recvFile(parent)
	if err != nil {
		_ = proc.Signal(unix.SIGKILL)
		_, _ = proc.Wait()
		return nil, fmt.Errorf("receive console: %w", err)
	}
	p := &execStreams{closers: []*os.File{master}}
	if sio.Stdin != nil {
		// The master stays open for output; stdin EOF does not close it.
		go func() { _, _ = io.Copy(master, sio.Stdin) }()
	}
	if sio.Resize != nil {
		go func() {
			rc, err := master.SyscallConn()
			if err != nil {
				return
			}
			for sz := range sio.Resize {
				// Not master.Fd(): it would make the file blocking, and
				// then Close could not interrupt the output copy.
				_ = rc.Control(func(fd uintptr) {
					_ = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Height, Col: sz.Width})
				})
			}
		}()
	}
	p.copyOut(sio.Stdout, master)
	return p, nil
}

// recvFile receives one file descriptor sent with SCM_RIGHTS on socket,
// as libcontainer's init sends a console master.
func recvFile(socket *os.File) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(socket.Fd()), name, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	if len(msgs) != 1 {
		return nil, errors.New("expected one control message with the console")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil {
		return nil, err
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, errors.New("expected one file descriptor for the console")
	}
	// Non-blocking so that Go's poller serves it and Close interrupts reads.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}

package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"kedge.dev/kedge/runtime/fifopump"
	"kedge.dev/kedge/runtime/logs"
	"kedge.dev/kedge/runtime/rootfs"
)

// container is the in-memory side of one container. Its fields are guarded
// by mu, except that exited is closed once under mu and read without it.
type container struct {
	mu      sync.Mutex
	dir     string
	h       *handle
	lc      *libcontainer.Container // set while running
	exited  chan struct{}           // closed when a running container ends
	removed bool
	io      attachIO // stdin, console and live output for Attach (attach.go)

	readers []*os.File         // files closed when the container ends: console, stdinOnce writer
	pumped  []*fifopump.Source // the output FIFOs, read by the runtime's pump
	copiers sync.WaitGroup     // one per output FIFO and console
	logFile *logs.RotatingFile
}

var idRe = regexp.MustCompile(`^[A-Za-z0-9_+\-.]+$`)

// fifo names, in the container's directory.
const (
	stdoutFifo = "stdout.fifo"
	stderrFifo = "stderr.fifo"
)

// CreateContainer prepares a container: resolves its image and command,
// mounts its root filesystem and persists its handle. The container is
// then in state created.
func (r *Runtime) CreateContainer(ctx context.Context, spec ContainerSpec) (err error) {
	if !idRe.MatchString(spec.ID) || spec.ID == "." || spec.ID == ".." {
		return fmt.Errorf("%w: container ID %q must be letters, digits and _+-.", ErrInvalidSpec, spec.ID)
	}
	cg, err := cgroupPath(spec, r.cfg.CgroupRoot)
	if err != nil {
		return err
	}
	for _, m := range spec.Mounts {
		if !filepath.IsAbs(m.Source) || !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("%w: mount %q -> %q: paths must be absolute", ErrInvalidSpec, m.Source, m.Destination)
		}
	}
	rec, err := r.images.Get(spec.Image)
	if err != nil {
		return fmt.Errorf("create container %s: %w", spec.ID, err)
	}
	if _, err := processArgs(spec, rec.Image); err != nil {
		return err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	if r.containers[spec.ID] != nil {
		r.mu.Unlock()
		return fmt.Errorf("container %q: %w", spec.ID, ErrContainerExists)
	}
	c := &container{dir: filepath.Join(r.dir, spec.ID)}
	c.mu.Lock() // held until the container is ready; others wait on it
	defer c.mu.Unlock()
	r.containers[spec.ID] = c
	r.mu.Unlock()
	defer func() {
		if err != nil {
			_ = rootfs.Unmount(rootfs.NewLayout(c.dir))
			_ = os.RemoveAll(c.dir)
			c.removed = true
			r.mu.Lock()
			delete(r.containers, spec.ID)
			r.mu.Unlock()
		}
	}()

	if err := os.Mkdir(c.dir, 0o700); err != nil {
		return fmt.Errorf("create container %s: %w", spec.ID, err)
	}
	c.h = &handle{
		Spec: spec, ImageID: rec.ID, ChainIDs: rec.ChainIDs, Cgroup: cg,
		State: StateCreated, CreatedAt: time.Now(),
	}
	if err := r.mountRootfs(c); err != nil {
		return fmt.Errorf("create container %s: %w", spec.ID, err)
	}
	if err := checkSecurity(spec, rootfs.NewLayout(c.dir).Merged, rec.User, r.host); err != nil {
		return fmt.Errorf("create container %s: %w", spec.ID, err)
	}
	if err := c.h.save(c.dir); err != nil {
		return err
	}
	r.log.Debug("container created", "id", spec.ID, "image", rec.ID)
	return nil
}

// mountRootfs mounts the container's overlay (idempotent).
func (r *Runtime) mountRootfs(c *container) error {
	lowers := make([]string, 0, len(c.h.ChainIDs))
	for i := len(c.h.ChainIDs) - 1; i >= 0; i-- {
		d, err := r.images.Snapshots().Dir(c.h.ChainIDs[i])
		if err != nil {
			return err
		}
		if !r.images.Snapshots().Has(c.h.ChainIDs[i]) {
			return fmt.Errorf("layer %s of image %s is gone: %w", c.h.ChainIDs[i], c.h.ImageID, ErrImageNotPresent)
		}
		lowers = append(lowers, d)
	}
	return rootfs.Mount(rootfs.NewLayout(c.dir), lowers)
}

// StartContainer starts a created container's process. When the process
// cannot be started (for example its executable does not exist), the
// container becomes exited with Reason StartError and exit code 128, and
// the error wraps ErrStartFailed with a message like Kubernetes shows
// (`exec: "foo": executable file not found in $PATH`).
func (r *Runtime) StartContainer(ctx context.Context, id string) error {
	c, err := r.get(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return fmt.Errorf("container %q: %w", id, ErrContainerNotFound)
	}
	if c.h.State != StateCreated {
		return fmt.Errorf("start container %s in state %s: %w", id, c.h.State, ErrInvalidState)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.start(c); err != nil {
		msg := startMessage(err)
		r.log.Info("container failed to start", "id", id, "err", err)
		c.detachLogs()
		c.h.State, c.h.ExitCode, c.h.Reason, c.h.Message = StateExited, 128, ReasonStartError, msg
		c.h.StartedAt = time.Time{}
		c.h.FinishedAt = time.Now()
		if serr := c.h.save(c.dir); serr != nil {
			r.log.Warn("saving container handle", "id", id, "err", serr)
		}
		return fmt.Errorf("start container %s: %w: %s", id, ErrStartFailed, msg)
	}
	r.poke()
	return nil
}

// start runs the container's init. Callers hold c.mu.
func (r *Runtime) start(c *container) (err error) {
	h := c.h
	rec, err := r.images.Get(h.ImageID)
	if err != nil {
		return err
	}
	argv, err := processArgs(h.Spec, rec.Image)
	if err != nil {
		return err
	}
	if err := r.mountRootfs(c); err != nil {
		return err
	}
	layout := rootfs.NewLayout(c.dir)
	user, err := processUser(layout.Merged, rec.User, h.Spec.Security)
	if err != nil {
		return err
	}
	cwd := h.Spec.WorkingDir
	if cwd == "" {
		cwd = rec.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}

	// Output goes through FIFOs the container holds open read-write, so it
	// never gets SIGPIPE while no runtime reads (see the package doc).
	var outW, errW *os.File
	defer func() {
		// The container has its own copies now (or failed to start).
		outW.Close()
		errW.Close()
	}()
	outW, err = openFifoWriter(filepath.Join(c.dir, stdoutFifo))
	if err != nil {
		return err
	}
	errW, err = openFifoWriter(filepath.Join(c.dir, stderrFifo))
	if err != nil {
		return err
	}
	if err := r.attachLogs(c); err != nil {
		return err
	}

	if err := r.parents.recordMissing(r.mounts, h.Cgroup); err != nil {
		return err
	}
	cfg, err := libcontainerConfig(h.Spec, layout.Merged, h.Cgroup, r.host)
	if err != nil {
		return err
	}
	lc, err := libcontainer.Create(r.cfg.StateDir, h.Spec.ID, cfg)
	if errors.Is(err, libcontainer.ErrExist) {
		// Left by a start that crashed midway: clear it and retry.
		if old, lerr := libcontainer.Load(r.cfg.StateDir, h.Spec.ID); lerr == nil {
			_ = old.Signal(unix.SIGKILL)
			_ = old.Destroy()
		}
		_ = os.RemoveAll(filepath.Join(r.cfg.StateDir, h.Spec.ID))
		lc, err = libcontainer.Create(r.cfg.StateDir, h.Spec.ID, cfg)
	}
	if err != nil {
		return fmt.Errorf("create libcontainer container: %w", err)
	}
	proc := &libcontainer.Process{
		Args:             argv,
		Env:              mergeEnv(rec.Env, h.Spec.Env),
		Cwd:              cwd,
		UID:              user.Uid,
		GID:              user.Gid,
		AdditionalGroups: user.Sgids,
		Stdout:           outW,
		Stderr:           errW,
		Init:             true,
	}
	console, err := prepareStdio(c, proc)
	if err != nil {
		return err
	}
	if console != nil {
		defer console.Close()
	}
	if f, ok := proc.Stdin.(*os.File); ok {
		defer f.Close()
	}
	if err := lc.Run(proc); err != nil {
		_ = lc.Signal(unix.SIGKILL)
		if derr := lc.Destroy(); derr != nil {
			r.log.Warn("destroying container after failed start", "id", h.Spec.ID, "err", derr)
		}
		return err
	}
	st, err := lc.State()
	if err != nil {
		_ = lc.Signal(unix.SIGKILL)
		return fmt.Errorf("read container state: %w", err)
	}
	if console != nil {
		if err := r.attachConsole(c, console); err != nil {
			_ = lc.Signal(unix.SIGKILL)
			return err
		}
	}
	c.lc = lc
	c.exited = make(chan struct{})
	h.State, h.Pid, h.PidStart = StateRunning, st.InitProcessPid, st.InitProcessStartTime
	h.StartedAt = time.Now()
	if r.exits != nil {
		if err := r.exits.Register(h.Pid, h.PidStart, h.Spec.ID); err != nil {
			r.log.Warn("registering container with the exit recorder", "id", h.Spec.ID, "err", err)
		}
		r.holdFiles(c)
	}
	if err := h.save(c.dir); err != nil {
		r.log.Warn("saving container handle", "id", h.Spec.ID, "err", err)
	}
	r.log.Debug("container started", "id", h.Spec.ID, "pid", h.Pid)
	return nil
}

// startMessage turns libcontainer's start error into the short message
// Kubernetes users know, e.g. `exec: "foo": executable file not found in $PATH`.
func startMessage(err error) string {
	s := err.Error()
	if i := strings.Index(s, "exec: \""); i >= 0 {
		return s[i:]
	}
	if i := strings.LastIndex(s, "error during container init: "); i >= 0 {
		return s[i+len("error during container init: "):]
	}
	return s
}

// openFifoWriter (re)creates the FIFO at p and opens it read-write.
func openFifoWriter(p string) (*os.File, error) {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := unix.Mkfifo(p, 0o600); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Base(p), err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", filepath.Base(p), err)
	}
	return f, nil
}

// attachLogs opens the FIFOs' read ends and the log file and hands the
// FIFOs to the runtime's pump. Callers hold c.mu; the FIFOs must have a
// writer.
func (r *Runtime) attachLogs(c *container) error {
	var out io.Writer = io.Discard
	if p := c.h.Spec.LogPath; p != "" {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("create log directory: %w", err)
		}
		f, err := logs.OpenRotating(p, r.cfg.LogMaxSize, r.cfg.LogMaxFiles)
		if err != nil {
			return err
		}
		c.logFile, out = f, f
	}
	w := logs.NewWriter(out)
	c.io.log = w
	for _, s := range []struct {
		file   string
		stream logs.Stream
	}{{stdoutFifo, logs.Stdout}, {stderrFifo, logs.Stderr}} {
		fd, err := unix.Open(filepath.Join(c.dir, s.file), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			c.detachLogs()
			return fmt.Errorf("open %s: %w", s.file, err)
		}
		if err := r.pumpOutput(c, s.stream, fd, w); err != nil {
			unix.Close(fd)
			c.detachLogs()
			return err
		}
	}
	return nil
}

// outputChunk is the pump's read size: one buffer serves every container
// of the node, so it can be as large as a log entry.
const outputChunk = 16 << 10

// pumpOutput hands one output FIFO of c to the runtime's pump, which
// copies it into the log (and to attached clients) until the container's
// writers close it or detachLogs removes it. A log write that fails (a
// full disk) drops the output rather than stopping the copy: a container
// whose output is no longer read would block on its next write. Callers
// hold c.mu.
func (r *Runtime) pumpOutput(c *container, stream logs.Stream, fd int, w *logs.Writer) error {
	lw := w.Lines(stream)
	id := c.h.Spec.ID
	failing := false
	sink := func(p []byte) error {
		c.io.hub.publish(stream, p)
		if err := lw.Write(p); err != nil {
			if !failing {
				r.log.Warn("writing the container log; output is dropped until it can be written again", "id", id, "stream", stream, "err", err)
			}
			failing = true
			return nil
		}
		failing = false
		return nil
	}
	done := func(err error) {
		defer c.copiers.Done()
		if ferr := lw.Flush(); ferr != nil && !failing {
			r.log.Warn("writing the container log", "id", id, "stream", stream, "err", ferr)
		}
		if err != nil && !errors.Is(err, fifopump.ErrRemoved) && !errors.Is(err, fifopump.ErrClosed) {
			r.log.Warn("copying container output", "id", id, "stream", stream, "err", err)
		}
	}
	c.copiers.Add(1)
	src, err := r.pump.Add(fd, sink, done)
	if err != nil {
		c.copiers.Done()
		return fmt.Errorf("copy %s of container %s: %w", stream, id, err)
	}
	c.pumped = append(c.pumped, src)
	return nil
}

// detachLogs closes the FIFO readers (ending the copiers) and the log file.
// Callers hold c.mu.
func (c *container) detachLogs() {
	for _, src := range c.pumped {
		src.Remove()
	}
	c.pumped = nil
	for _, f := range c.readers {
		f.Close()
	}
	c.readers = nil
	c.io.console = nil // closed with the readers
	c.copiers.Wait()
	if c.logFile != nil {
		c.logFile.Close()
		c.logFile = nil
	}
}

// drainLogs waits up to d for the copiers to reach the end of the output
// (all writers gone), then detaches. Callers hold c.mu.
func (c *container) drainLogs(d time.Duration) {
	done := make(chan struct{})
	go func() {
		c.copiers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
	c.detachLogs()
}

// StopContainer sends SIGTERM to the container's init, waits up to grace
// for it to exit, then sends SIGKILL and waits for the exit (an init that
// installed no TERM handler ignores TERM). Stopping a container that is
// not running is not an error.
func (r *Runtime) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	c, err := r.get(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.removed {
		c.mu.Unlock()
		return fmt.Errorf("container %q: %w", id, ErrContainerNotFound)
	}
	if c.h.State != StateRunning || c.lc == nil {
		c.mu.Unlock()
		return nil
	}
	lc, exited := c.lc, c.exited
	c.mu.Unlock()

	if grace > 0 {
		if err := lc.Signal(unix.SIGTERM); err != nil && !errors.Is(err, libcontainer.ErrNotRunning) {
			r.log.Debug("SIGTERM", "id", id, "err", err)
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-exited:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	if err := lc.Signal(unix.SIGKILL); err != nil && !errors.Is(err, libcontainer.ErrNotRunning) {
		r.log.Debug("SIGKILL", "id", id, "err", err)
	}
	r.poke()
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RemoveContainer kills the container if it runs, then destroys it: its
// libcontainer state, root filesystem mount, upper and work directories,
// cgroup and the empty cgroup parents the runtime created. The log file is
// kept (it belongs to the caller). Removing an unknown container is not an
// error.
func (r *Runtime) RemoveContainer(ctx context.Context, id string) error {
	c, err := r.get(id)
	if errors.Is(err, ErrContainerNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := r.StopContainer(ctx, id, 0); err != nil && !errors.Is(err, ErrContainerNotFound) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return nil
	}
	if err := r.destroy(c); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	if err := rootfs.Unmount(rootfs.NewLayout(c.dir)); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	c.removed = true
	r.mu.Lock()
	delete(r.containers, id)
	r.mu.Unlock()
	r.log.Debug("container removed", "id", id)
	return nil
}

// destroy removes the libcontainer state and the container's cgroup and
// created parents. Callers hold c.mu.
func (r *Runtime) destroy(c *container) error {
	id := c.h.Spec.ID
	lc := c.lc
	if lc == nil {
		if l, err := libcontainer.Load(r.cfg.StateDir, id); err == nil {
			lc = l
		}
	}
	if lc != nil {
		if err := lc.Destroy(); err != nil {
			return err
		}
		c.lc = nil
	}
	if err := os.RemoveAll(filepath.Join(r.cfg.StateDir, id)); err != nil {
		return err
	}
	// libcontainer removes the cgroups it manages; this also covers
	// hierarchies it does not manage and a crash between the two.
	if _, err := removeCgroup(r.mounts, c.h.Cgroup); err != nil {
		return err
	}
	return r.parents.removeEmpty(r.mounts, c.h.Cgroup)
}

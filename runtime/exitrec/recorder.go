package exitrec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrRunning is returned by Run when another recorder holds the directory.
var ErrRunning = errors.New("an exit recorder already runs for this directory")

// RecorderConfig configures Run.
type RecorderConfig struct {
	// Dir is the directory shared with the runtime (Dir). Absolute.
	Dir string
	// IdleCheck is how often the recorder looks whether it can leave:
	// nothing registered is waiting for its exit and no runtime holds the
	// directory. Default 10s.
	IdleCheck time.Duration
	// Logger receives the recorder's logs; nil discards them.
	Logger *slog.Logger
}

// Run is the recorder: it subscribes to process events, takes the
// directory's recorder lock, serves the fd store (fdstore.go), calls ready (the runtime waits for it before
// it starts containers), and records the exit of every registered PID
// until ctx ends, the directory is removed, or it is idle.
func Run(ctx context.Context, cfg RecorderConfig, ready func()) error {
	if cfg.IdleCheck <= 0 {
		cfg.IdleCheck = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// Subscribe before taking the lock: a held lock then means events are
	// being recorded, which is what Ensure relies on.
	ev, err := listenProcEvents()
	if err != nil {
		return err
	}
	defer ev.Close()
	lock, err := os.OpenFile(filepath.Join(cfg.Dir, recorderLock), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("open recorder lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return ErrRunning
		}
		return fmt.Errorf("lock recorder: %w", err)
	}
	if err := ev.setReadTimeout(int64(time.Second)); err != nil {
		return fmt.Errorf("set process events timeout: %w", err)
	}
	lis, err := listenFDStore(cfg.Dir)
	if err != nil {
		return err
	}
	store := &fdStore{held: map[string]heldFDs{}, log: log}
	go store.serve(lis)
	defer store.closeAll()
	defer lis.Close()
	r := &recorder{dir: cfg.Dir, log: log, fds: store}
	log.Info("exit recorder started", "dir", cfg.Dir, "pid", os.Getpid())
	if ready != nil {
		ready()
	}
	lastCheck := time.Now()
	for ctx.Err() == nil {
		exits, err := ev.read()
		switch {
		case err == nil:
			r.record(exits)
		case errors.Is(err, unix.ENOBUFS):
			// The kernel dropped events: an exit may be lost. Say so; the
			// runtime then reports that container's code as unknown.
			log.Warn("process events were lost (receive queue overflow); some exit codes may be unknown")
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
		default:
			return fmt.Errorf("read process events: %w", err)
		}
		if time.Since(lastCheck) >= cfg.IdleCheck {
			lastCheck = time.Now()
			if leave, hold, why := r.idle(); leave {
				// Release the recorder lock while still holding owner.lock
				// exclusively: a runtime that opens the directory now waits
				// for the owner lock and then finds no recorder, so it
				// starts a new one instead of trusting this leaving one.
				log.Info("exit recorder leaving", "why", why)
				lock.Close()
				if hold != nil {
					hold.Close()
				}
				return nil
			}
		}
	}
	return nil
}

type recorder struct {
	dir string
	log *slog.Logger
	fds *fdStore
}

// record writes a record for every exit of a registered thread group
// leader. A record that exists is kept: it belongs to the registered
// process, and a later exit with the same PID is a reuse.
func (r *recorder) record(exits []exitEvent) {
	for _, e := range exits {
		if e.pid != e.tgid || e.pid <= 0 {
			continue // a thread, not a process
		}
		reg := filepath.Join(r.dir, strconv.Itoa(e.pid))
		b, err := os.ReadFile(reg)
		if err != nil {
			continue // not a container's init
		}
		f := strings.Fields(string(b))
		if len(f) < 1 {
			continue
		}
		tmp := reg + ".exit.tmp"
		if err := os.WriteFile(tmp, fmt.Appendf(nil, "%s %d\n", f[0], uint32(e.status)), 0o600); err != nil {
			r.log.Warn("writing exit record", "pid", e.pid, "err", err)
			continue
		}
		if err := os.Link(tmp, reg+recordSuffix); err != nil && !errors.Is(err, os.ErrExist) {
			r.log.Warn("writing exit record", "pid", e.pid, "err", err)
		}
		_ = os.Remove(tmp)
		id := ""
		if len(f) > 1 {
			id = f[1]
		}
		r.log.Info("recorded exit", "pid", e.pid, "container", id, "status", describe(e.status))
		if id != "" {
			r.fds.drop(id) // its terminal and stdin serve nobody now
		}
	}
}

// idle reports whether the recorder can leave: its directory is gone, or
// no registered process is still running and no runtime owns the
// directory. It then returns the owner lock, held exclusively, which the
// caller releases after its own lock. Records nobody registered any more
// are removed on the way.
func (r *recorder) idle() (leave bool, hold *os.File, why string) {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return true, nil, "directory gone"
	}
	names := make(map[string]bool, len(ents))
	for _, e := range ents {
		names[e.Name()] = true
	}
	waiting := 0
	for n := range names {
		if pid, ok := strings.CutSuffix(n, recordSuffix); ok {
			if !names[pid] {
				_ = os.Remove(filepath.Join(r.dir, n))
			}
			continue
		}
		if _, err := strconv.Atoi(n); err == nil && !names[n+recordSuffix] {
			waiting++
		}
	}
	if waiting > 0 {
		return false, nil, ""
	}
	f, err := os.OpenFile(filepath.Join(r.dir, ownerLock), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false, nil, ""
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return false, nil, "" // a runtime is open
	}
	return true, f, "no container to watch and no runtime"
}

// describe renders a wait status for the log.
func describe(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit %d", ws.ExitStatus())
	case ws.Signaled():
		return "signal " + ws.Signal().String()
	}
	return fmt.Sprintf("status %#x", uint32(ws))
}

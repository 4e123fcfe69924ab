package exitrec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	recorderLock = "recorder.lock"
	ownerLock    = "owner.lock"
	recordSuffix = ".exit"
)

// Dir is the runtime's side of a recorder directory: it registers the
// containers' init PIDs and reads their records.
type Dir struct {
	path  string
	owner *os.File // shared lock on owner.lock while the Dir is open
}

// OpenDir creates path if needed and holds it as an owner: the recorder
// does not leave while an owner exists.
func OpenDir(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("create exit record directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(path, ownerLock), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open exit record directory: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock exit record directory: %w", err)
	}
	return &Dir{path: path, owner: f}, nil
}

// Path returns the directory.
func (d *Dir) Path() string { return d.path }

// Close gives up ownership.
func (d *Dir) Close() error { return d.owner.Close() }

// Register asks the recorder to keep the exit status of the process pid
// started at start (clock ticks since boot, /proc/<pid>/stat field 22).
// A record left from an earlier process with the same PID is removed;
// one of this process is kept, so registering again is harmless.
func (d *Dir) Register(pid int, start uint64, id string) error {
	if _, ok := d.Lookup(pid, start); !ok {
		if err := os.Remove(d.recordPath(pid)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("register pid %d: %w", pid, err)
		}
	}
	if err := writeFileAtomic(d.regPath(pid), fmt.Sprintf("%d %s\n", start, id)); err != nil {
		return fmt.Errorf("register pid %d: %w", pid, err)
	}
	return nil
}

// Lookup returns the recorded exit status of pid if the process that ended
// was the one started at start.
func (d *Dir) Lookup(pid int, start uint64) (unix.WaitStatus, bool) {
	b, err := os.ReadFile(d.recordPath(pid))
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, false
	}
	s, err1 := strconv.ParseUint(f[0], 10, 64)
	ws, err2 := strconv.ParseUint(f[1], 10, 32)
	if err1 != nil || err2 != nil || s != start {
		return 0, false
	}
	return unix.WaitStatus(ws), true
}

// Forget removes pid's registration and record.
func (d *Dir) Forget(pid int) {
	_ = os.Remove(d.regPath(pid))
	_ = os.Remove(d.recordPath(pid))
}

func (d *Dir) regPath(pid int) string    { return filepath.Join(d.path, strconv.Itoa(pid)) }
func (d *Dir) recordPath(pid int) string { return d.regPath(pid) + recordSuffix }

// writeFileAtomic writes content to path through a temporary file, so that
// a reader never sees half of it.
func writeFileAtomic(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

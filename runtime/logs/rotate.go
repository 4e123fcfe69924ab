package logs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults of log rotation, as kubelet's containerLogMaxSize and
// containerLogMaxFiles.
const (
	DefaultMaxSize  = 10 << 20
	DefaultMaxFiles = 5
)

// rotatedSuffix formats the time a file was rotated; it sorts by time.
// kubelet uses seconds; nanoseconds keep fast rotations from colliding.
const rotatedSuffix = "20060102-150405.000000000"

// RotatingFile is the file a Writer appends a container's log to. When a
// write would take the file past MaxSize it renames the file to
// "<path>.<UTC time>" and starts a new one, keeping at most MaxFiles files
// in all (the current one included), like kubelet's container log manager.
// A single Write is never split across files, so each CRI entry (one Write
// of Writer) stays whole. It is safe for concurrent use.
type RotatingFile struct {
	mu       sync.Mutex
	path     string
	maxSize  int64
	maxFiles int
	now      func() time.Time
	f        *os.File
	size     int64
}

// OpenRotating opens (appending) or creates the log at path. maxSize ≤ 0
// turns rotation off; maxFiles < 1 counts as 1 (rotated files are deleted
// at once).
func OpenRotating(path string, maxSize int64, maxFiles int) (*RotatingFile, error) {
	r := &RotatingFile{path: path, maxSize: maxSize, maxFiles: max(maxFiles, 1), now: time.Now}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open container log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open container log: %w", err)
	}
	r.f, r.size = f, st.Size()
	return nil
}

// Write appends p, rotating first when p would not fit.
func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, os.ErrClosed
	}
	if r.maxSize > 0 && r.size > 0 && r.size+int64(len(p)) > r.maxSize {
		if err := r.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

// rotate renames the current file, prunes old ones and opens a new file.
// Callers hold mu.
func (r *RotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("rotate container log: %w", err)
	}
	r.f = nil
	rotated := r.path + "." + r.now().UTC().Format(rotatedSuffix)
	if err := os.Rename(r.path, rotated); err != nil {
		return fmt.Errorf("rotate container log: %w", err)
	}
	if err := r.prune(); err != nil {
		return err
	}
	return r.open()
}

// prune removes the oldest rotated files beyond maxFiles-1.
func (r *RotatingFile) prune() error {
	old, err := RotatedFiles(r.path)
	if err != nil {
		return err
	}
	for len(old) > r.maxFiles-1 {
		if err := os.Remove(old[0]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove rotated container log: %w", err)
		}
		old = old[1:]
	}
	return nil
}

// Close closes the current file; later writes fail with os.ErrClosed.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// RotatedFiles lists the rotated files of the log at path, oldest first.
func RotatedFiles(path string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("list rotated container logs: %w", err)
	}
	prefix := filepath.Base(path) + "."
	var out []string
	for _, e := range ents {
		if rest, ok := strings.CutPrefix(e.Name(), prefix); ok && len(rest) == len(rotatedSuffix) && !e.IsDir() {
			out = append(out, filepath.Join(filepath.Dir(path), e.Name()))
		}
	}
	slices.Sort(out)
	return out, nil
}

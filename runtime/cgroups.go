package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	"golang.org/x/sys/unix"
)

// cgroupMount is one mounted cgroup hierarchy.
type cgroupMount struct {
	dir  string // where the hierarchy's root (as seen by us) is mounted
	root string // the hierarchy path mounted there, usually "/"
	opts string // super options, listing v1 controllers
	v2   bool
}

func cgroupMounts() ([]cgroupMount, error) {
	infos, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("read cgroup mounts: %w", err)
	}
	var out []cgroupMount
	for _, m := range infos {
		out = append(out, cgroupMount{dir: m.Mountpoint, root: m.Root, opts: m.VFSOptions, v2: m.FSType == "cgroup2"})
	}
	return out, nil
}

// path returns the directory of cgroup p in this hierarchy.
func (m cgroupMount) path(p string) string {
	rel, ok := strings.CutPrefix(p, m.root)
	if !ok || m.root == "/" {
		rel = p
	}
	return filepath.Join(m.dir, rel)
}

func (m cgroupMount) has(controller string) bool {
	return slices.Contains(strings.Split(m.opts, ","), controller)
}

// cgroupExists reports whether p exists in any hierarchy.
func cgroupExists(mounts []cgroupMount, p string) bool {
	for _, m := range mounts {
		if _, err := os.Stat(m.path(p)); err == nil {
			return true
		}
	}
	return false
}

// removeCgroup removes p from every hierarchy. It reports whether p is gone
// everywhere; a cgroup still holding children or tasks is left (EBUSY).
func removeCgroup(mounts []cgroupMount, p string) (bool, error) {
	gone := true
	for _, m := range mounts {
		err := unix.Rmdir(m.path(p))
		switch {
		case err == nil, errors.Is(err, unix.ENOENT):
		case errors.Is(err, unix.EBUSY), errors.Is(err, unix.ENOTEMPTY):
			gone = false
		default:
			return false, fmt.Errorf("remove cgroup %s: %w", m.path(p), err)
		}
	}
	return gone, nil
}

// memswAccounted reports whether the v1 memory controller accounts swap.
func memswAccounted(mounts []cgroupMount) bool {
	for _, m := range mounts {
		if !m.v2 && m.has("memory") {
			_, err := os.Stat(filepath.Join(m.dir, "memory.memsw.limit_in_bytes"))
			return err == nil
		}
	}
	return false
}

// oomKills returns how many processes of cgroup p the kernel's OOM killer
// has killed (memory.oom_control on v1, memory.events on v2).
func oomKills(mounts []cgroupMount, p string) (int64, error) {
	unified := cgroups.IsCgroup2UnifiedMode()
	for _, m := range mounts {
		var file string
		switch {
		case unified && m.v2:
			file = filepath.Join(m.path(p), "memory.events")
		case !unified && !m.v2 && m.has("memory"):
			file = filepath.Join(m.path(p), "memory.oom_control")
		default:
			continue
		}
		f, err := os.Open(file)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "oom_kill "); ok {
				return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
		return 0, sc.Err()
	}
	return 0, errors.New("no memory cgroup hierarchy")
}

// parentRegistry remembers which cgroup parents this runtime created, so
// that it removes them once empty and never removes a parent someone else
// made (the agent may keep pod-level limits there). It is persisted in one
// JSON file and safe for concurrent use.
type parentRegistry struct {
	mu   sync.Mutex
	file string
}

func (p *parentRegistry) load() ([]string, error) {
	b, err := os.ReadFile(p.file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read cgroup parents: %w", err)
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("read cgroup parents: %w", err)
	}
	return list, nil
}

func (p *parentRegistry) save(list []string) error {
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	tmp := p.file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save cgroup parents: %w", err)
	}
	return os.Rename(tmp, p.file)
}

// recordMissing notes every ancestor of leaf (up to, excluding, "/") that
// does not exist yet: the cgroup manager is about to create it.
func (p *parentRegistry) recordMissing(mounts []cgroupMount, leaf string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	list, err := p.load()
	if err != nil {
		return err
	}
	changed := false
	for dir := path.Dir(leaf); dir != "/"; dir = path.Dir(dir) {
		if cgroupExists(mounts, dir) || slices.Contains(list, dir) {
			continue
		}
		list = append(list, dir)
		changed = true
	}
	if !changed {
		return nil
	}
	return p.save(list)
}

// removeEmpty removes the recorded ancestors of leaf that are empty,
// deepest first, and forgets those that are gone.
func (p *parentRegistry) removeEmpty(mounts []cgroupMount, leaf string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	list, err := p.load()
	if err != nil {
		return err
	}
	changed := false
	for dir := path.Dir(leaf); dir != "/"; dir = path.Dir(dir) {
		i := slices.Index(list, dir)
		if i < 0 {
			continue
		}
		gone, err := removeCgroup(mounts, dir)
		if err != nil {
			return err
		}
		if !gone {
			break // a busy parent keeps its own parents busy too
		}
		list = slices.Delete(list, i, i+1)
		changed = true
	}
	if !changed {
		return nil
	}
	return p.save(list)
}

// EnsureCgroup creates the cgroup at the absolute path p (and its parents)
// in every hierarchy and applies res to it; it is idempotent and is how the
// caller keeps pod-level limits above its containers' cgroups. Device rules
// are left alone (the containers have their own). A cgroup made this way is
// removed by RemoveCgroup, never by RemoveContainer.
func (r *Runtime) EnsureCgroup(ctx context.Context, p string, res Resources) error {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return fmt.Errorf("%w: cgroup %q must be a clean absolute path below the root", ErrInvalidSpec, p)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	cr := cgroupResources(res, r.host)
	cr.SkipDevices = true
	m, err := manager.New(&cgroups.Cgroup{Path: p, Resources: cr})
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", p, err)
	}
	if err := m.Apply(-1); err != nil { // -1: create without adding a process
		return fmt.Errorf("create cgroup %s: %w", p, err)
	}
	if err := m.Set(cr); err != nil {
		return fmt.Errorf("set limits of cgroup %s: %w", p, err)
	}
	return nil
}

// RemoveCgroup removes the cgroup at p made by EnsureCgroup; it fails
// wrapping ErrInvalidState while the cgroup still holds containers.
// Removing a cgroup that does not exist is not an error.
func (r *Runtime) RemoveCgroup(ctx context.Context, p string) error {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return fmt.Errorf("%w: cgroup %q must be a clean absolute path below the root", ErrInvalidSpec, p)
	}
	gone, err := removeCgroup(r.mounts, p)
	if err != nil {
		return err
	}
	if !gone {
		return fmt.Errorf("remove cgroup %s: %w: it still holds processes or children", p, ErrInvalidState)
	}
	return nil
}

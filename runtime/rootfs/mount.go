package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Layout names the directories of one container's root filesystem.
type Layout struct {
	Upper, Work, Merged string
}

// NewLayout returns the layout under dir (dir/upper, dir/work, dir/rootfs).
func NewLayout(dir string) Layout {
	return Layout{
		Upper:  filepath.Join(dir, "upper"),
		Work:   filepath.Join(dir, "work"),
		Merged: filepath.Join(dir, "rootfs"),
	}
}

// Mount creates the layout's directories and mounts an overlay of lowers
// (top layer first) at l.Merged. With no lowers an empty directory is used,
// since overlayfs needs at least one.
func Mount(l Layout, lowers []string) error {
	for _, d := range []string{l.Upper, l.Work, l.Merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create rootfs directory: %w", err)
		}
	}
	if len(lowers) == 0 {
		empty := filepath.Join(filepath.Dir(l.Upper), "empty")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return fmt.Errorf("create rootfs directory: %w", err)
		}
		lowers = []string{empty}
	}
	for _, p := range append(append([]string{}, lowers...), l.Upper, l.Work) {
		if strings.ContainsAny(p, ",:") {
			return fmt.Errorf("mount rootfs: path %q has a character overlayfs options cannot carry", p)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(lowers, ":"), l.Upper, l.Work)
	if len(opts) >= os.Getpagesize() {
		return fmt.Errorf("mount rootfs: %d layers make overlay options longer than a page", len(lowers))
	}
	if mounted, _ := mountinfo.Mounted(l.Merged); mounted {
		return nil
	}
	if err := unix.Mount("overlay", l.Merged, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay rootfs at %s: %w", l.Merged, err)
	}
	return nil
}

// Unmount unmounts l.Merged (all mounts stacked there) and removes the
// layout's directories. It is idempotent.
func Unmount(l Layout) error {
	for {
		err := unix.Unmount(l.Merged, 0)
		if err == nil {
			continue // another mount may be stacked below
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // not a mount point (any more)
		}
		if errors.Is(err, unix.EBUSY) {
			if err := unix.Unmount(l.Merged, unix.MNT_DETACH); err != nil {
				return fmt.Errorf("unmount rootfs %s: %w", l.Merged, err)
			}
			continue
		}
		return fmt.Errorf("unmount rootfs %s: %w", l.Merged, err)
	}
	for _, d := range []string{l.Merged, l.Upper, l.Work, filepath.Join(filepath.Dir(l.Upper), "empty")} {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("remove rootfs directory: %w", err)
		}
	}
	return nil
}

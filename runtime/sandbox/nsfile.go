package sandbox

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// nsKind is one namespace type the sandbox pins.
type nsKind struct {
	name string // file name under /proc/<pid>/task/<tid>/ns and under the pod directory
	flag int    // CLONE_NEW* flag for unshare(2)
}

var (
	kindNet = nsKind{name: "net", flag: unix.CLONE_NEWNET}
	kindIPC = nsKind{name: "ipc", flag: unix.CLONE_NEWIPC}
	kindUTS = nsKind{name: "uts", flag: unix.CLONE_NEWUTS}
)

// allKinds is every file Remove may find in a pod directory.
var allKinds = []nsKind{kindNet, kindIPC, kindUTS}

// isPinned reports whether path is a mounted namespace file (nsfs), that is, a live pin.
// A missing file is not an error: it is simply not pinned.
func isPinned(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("statfs %s: %w", path, err)
	}
	return st.Type == unix.NSFS_MAGIC, nil
}

// pinNew creates a new namespace of the given kind and bind-mounts it onto path, which is
// created as an empty file if missing. For a UTS namespace a non-empty hostname is set
// inside it before it is pinned, so no container can ever see the host's name.
func pinNew(path string, kind nsKind, hostname string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o444)
	if err != nil {
		return fmt.Errorf("create pin file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close pin file %s: %w", path, err)
	}

	if err := onThrowawayThread(func() error { return unshareAndPin(path, kind, hostname) }); err != nil {
		// Leave no empty file behind that looks like a half-made sandbox.
		_ = os.Remove(path)
		return err
	}
	return nil
}

// onThrowawayThread runs fn on an OS thread that is destroyed afterwards, so fn may change
// the thread's namespaces without any other goroutine ever running in them.
//
// A goroutine that exits while locked ends its thread, except on the main thread, which the
// runtime parks for ever instead. The main thread must never be the one to unshare: its
// namespaces are what /proc/self/ns/* shows for the whole process. So if the locked
// goroutine finds itself on the main thread it holds it while a second goroutine, which
// then cannot be scheduled there, does the work.
func onThrowawayThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			// Never unlocked: returning ends this thread.
			errc <- fn()
			return
		}
		inner := make(chan error, 1)
		go func() {
			runtime.LockOSThread()
			inner <- fn()
		}()
		err := <-inner
		runtime.UnlockOSThread() // the main thread was not touched
		errc <- err
	}()
	return <-errc
}

// unshareAndPin runs on a locked thread that is thrown away afterwards.
func unshareAndPin(path string, kind nsKind, hostname string) error {
	if err := unix.Unshare(kind.flag); err != nil {
		return fmt.Errorf("unshare %s namespace: %w", kind.name, err)
	}
	if kind == kindUTS && hostname != "" {
		if err := unix.Sethostname([]byte(hostname)); err != nil {
			return fmt.Errorf("set hostname %q in new uts namespace: %w", hostname, err)
		}
	}
	src := fmt.Sprintf("/proc/self/task/%d/ns/%s", unix.Gettid(), kind.name)
	if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount %s onto %s: %w", src, path, err)
	}
	return nil
}

// maxStackedPins bounds how many mounts unpin peels off one file.
const maxStackedPins = 8

// unpin unmounts path if it is a pin and removes the file. A missing file is fine.
func unpin(path string) error {
	pinned, err := isPinned(path)
	if err != nil {
		return err
	}
	// A pin can be stacked if an earlier Ensure crashed between mount and bookkeeping;
	// unmount until the file is no longer nsfs, but never loop forever.
	for i := 0; pinned; i++ {
		if i == maxStackedPins {
			return fmt.Errorf("unmount %s: still a namespace mount after %d unmounts", path, i)
		}
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", path, err)
		}
		if pinned, err = isPinned(path); err != nil {
			return err
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

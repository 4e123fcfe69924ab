package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// ErrInvalidSpec is wrapped by Ensure's and Remove's errors for a bad pod UID or hostname.
var ErrInvalidSpec = errors.New("invalid sandbox spec")

// Spec says which namespaces a pod needs.
type Spec struct {
	// PodUID names the sandbox; it becomes a directory name, so it must be a single safe
	// path element (letters, digits, '-', '_', '.'; not "." or "..").
	PodUID string
	// Hostname is set inside the pod's UTS namespace (normally the pod name, at most 64
	// bytes). Required unless HostNetwork is set.
	Hostname string
	// HostNetwork makes the pod share the host's network and UTS namespaces: the
	// Sandbox then has empty NetNS and UTSNS. The pod still gets its own IPC namespace.
	HostNetwork bool
}

// Sandbox holds the paths of a pod's pinned namespaces. An empty path means "the host's".
type Sandbox struct {
	PodUID string
	NetNS  string // network namespace file; "" for hostNetwork pods
	IPCNS  string // IPC namespace file
	UTSNS  string // UTS namespace file; "" for hostNetwork pods
}

// Manager creates, finds and removes pod sandboxes under Config.Dir.
//
// All methods are safe for concurrent use; they are serialised by one mutex, as each call
// is a few syscalls. The namespaces belong to the pods, not to the Manager: there is no
// Close, and dropping a Manager leaves every sandbox in place for the next one to adopt.
type Manager struct {
	dir string
	log *slog.Logger

	mu sync.Mutex // serialises changes to Dir
}

// New validates cfg and returns a Manager. It touches nothing on disk.
func New(cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{dir: filepath.Clean(cfg.Dir), log: log.With("component", "sandbox")}, nil
}

// Ensure returns the pod's sandbox, creating whatever namespace of it is missing. It is
// idempotent: namespaces already pinned are kept as they are (their hostname included), so
// containers that joined them before an agent restart stay in the same pod. If it fails
// half-way, the namespaces made so far stay pinned: a retry completes them, Remove drops them.
func (m *Manager) Ensure(ctx context.Context, spec Spec) (Sandbox, error) {
	if err := validUID(spec.PodUID); err != nil {
		return Sandbox{}, err
	}
	if !spec.HostNetwork && spec.Hostname == "" {
		return Sandbox{}, fmt.Errorf("%w: pod %s: hostname is required without hostNetwork", ErrInvalidSpec, spec.PodUID)
	}
	if len(spec.Hostname) > 64 {
		return Sandbox{}, fmt.Errorf("%w: pod %s: hostname %q is longer than 64 bytes", ErrInvalidSpec, spec.PodUID, spec.Hostname)
	}
	if err := ctx.Err(); err != nil {
		return Sandbox{}, fmt.Errorf("ensure sandbox %s: %w", spec.PodUID, err)
	}

	m.mu.Lock()
	defer m.mu.Unlock()

	podDir := filepath.Join(m.dir, spec.PodUID)
	if err := os.MkdirAll(podDir, 0o755); err != nil {
		return Sandbox{}, fmt.Errorf("create sandbox dir %s: %w", podDir, err)
	}
	kinds := []nsKind{kindIPC}
	if !spec.HostNetwork {
		kinds = append(kinds, kindNet, kindUTS)
	}
	sb := Sandbox{PodUID: spec.PodUID}
	for _, k := range kinds {
		path := filepath.Join(podDir, k.name)
		pinned, err := isPinned(path)
		if err != nil {
			return Sandbox{}, fmt.Errorf("ensure sandbox %s: %w", spec.PodUID, err)
		}
		if !pinned {
			if err := pinNew(path, k, spec.Hostname); err != nil {
				return Sandbox{}, fmt.Errorf("ensure sandbox %s: %w", spec.PodUID, err)
			}
			m.log.Debug("namespace created", "pod_uid", spec.PodUID, "kind", k.name, "path", path)
		}
		switch k {
		case kindNet:
			sb.NetNS = path
		case kindIPC:
			sb.IPCNS = path
		case kindUTS:
			sb.UTSNS = path
		}
	}
	return sb, nil
}

// Remove unpins and deletes every namespace of the pod and its directory. Processes still
// inside a namespace keep it alive until they exit. Removing a missing sandbox is not an
// error.
func (m *Manager) Remove(ctx context.Context, podUID string) error {
	if err := validUID(podUID); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("remove sandbox %s: %w", podUID, err)
	}

	m.mu.Lock()
	defer m.mu.Unlock()

	podDir := filepath.Join(m.dir, podUID)
	for _, k := range allKinds {
		if err := unpin(filepath.Join(podDir, k.name)); err != nil {
			return fmt.Errorf("remove sandbox %s: %w", podUID, err)
		}
	}
	if err := os.Remove(podDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove sandbox %s: %w", podUID, err)
	}
	m.log.Debug("sandbox removed", "pod_uid", podUID)
	return nil
}

// List returns the UIDs of the sandboxes present under Config.Dir, in directory order, so
// the caller can remove those whose pod is gone. A missing Dir means no sandboxes.
func (m *Manager) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()

	entries, err := os.ReadDir(m.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list sandboxes in %s: %w", m.dir, err)
	}
	var uids []string
	for _, e := range entries {
		if !e.IsDir() || validUID(e.Name()) != nil {
			continue
		}
		uids = append(uids, e.Name())
	}
	return uids, nil
}

// validUID accepts only names that are one harmless path element.
func validUID(uid string) error {
	if uid == "" || uid == "." || uid == ".." || len(uid) > 253 {
		return fmt.Errorf("%w: pod UID %q", ErrInvalidSpec, uid)
	}
	for _, r := range uid {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return fmt.Errorf("%w: pod UID %q has character %q", ErrInvalidSpec, uid, r)
		}
	}
	return nil
}

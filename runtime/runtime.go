package runtime

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/opencontainers/cgroups"

	"kedge.dev/kedge/runtime/exitrec"
	"kedge.dev/kedge/runtime/fifopump"
	"kedge.dev/kedge/runtime/images"
)

// Runtime manages the node's images and containers. All methods are safe
// for concurrent use. Operations on one container are serialized; a
// container's exit is noticed by the runtime's monitor goroutine, which New
// starts and Close stops. Containers keep running when the Runtime is
// closed or the process exits.
type Runtime struct {
	cfg     Config
	log     *slog.Logger
	images  *images.Store
	dir     string // Root/containers
	parents *parentRegistry
	mounts  []cgroupMount
	host    hostFeatures
	exits   *exitrec.Dir   // nil without a running exit recorder
	pump    *fifopump.Pump // copies every container's output FIFOs

	// mu guards containers and closed; never held while a container's mu
	// is waited for in the other order (lock order: mu, then container.mu).
	mu         sync.Mutex
	containers map[string]*container
	closed     bool

	stop      chan struct{}
	wake      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New opens the runtime's stores under cfg.Root, reloads container handles
// (adopting containers that still run) and starts the monitor goroutine.
func New(cfg Config) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("component", "runtime")
	imgs, err := images.New(images.Config{Root: cfg.Root, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	caps, err := boundingCaps()
	if err != nil {
		return nil, err
	}
	r := &Runtime{
		cfg: cfg, log: log, images: imgs,
		dir:     filepath.Join(cfg.Root, "containers"),
		parents: &parentRegistry{file: filepath.Join(cfg.Root, "cgroup-parents.json")},
		mounts:  mounts,
		host: hostFeatures{memsw: memswAccounted(mounts), v2: cgroups.IsCgroup2UnifiedMode(), caps: caps,
			minOOMScoreAdj: lowestOOMScoreAdj(caps)},
		containers: map[string]*container{},
		stop:       make(chan struct{}),
		wake:       make(chan struct{}, 1),
	}
	for _, d := range []string{r.dir, cfg.StateDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create runtime directory: %w", err)
		}
	}
	if r.pump, err = fifopump.New(outputChunk); err != nil {
		return nil, fmt.Errorf("start the output pump: %w", err)
	}
	if len(cfg.ExitRecorder) > 0 {
		r.exits = r.startExitRecorder()
	}
	if err := r.reload(); err != nil {
		r.closeExits()
		r.pump.Close()
		return nil, err
	}
	r.wg.Add(1)
	go r.monitor()
	return r, nil
}

// Close stops the monitor and the log copiers. Running containers keep
// running; a later New adopts them. Close is idempotent.
func (r *Runtime) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		cs := make([]*container, 0, len(r.containers))
		for _, c := range r.containers {
			cs = append(cs, c)
		}
		r.mu.Unlock()
		close(r.stop)
		r.wg.Wait()
		r.closeExits()
		for _, c := range cs {
			c.mu.Lock()
			c.detachLogs()
			c.mu.Unlock()
		}
		r.pump.Close()
	})
	return nil
}

// startExitRecorder opens the exit record directory and makes sure its
// recorder runs. Without one pods still run; only exit codes of
// containers that are not our children are lost, so a failure is a
// warning.
func (r *Runtime) startExitRecorder() *exitrec.Dir {
	d, err := exitrec.OpenDir(r.cfg.ExitDir)
	if err != nil {
		r.log.Warn("no exit recorder: exit codes of containers that end while kedge is down will be unknown", "err", err)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	pid, err := exitrec.Ensure(ctx, d, r.cfg.ExitRecorder)
	if err != nil {
		d.Close()
		r.log.Warn("no exit recorder: exit codes of containers that end while kedge is down will be unknown", "err", err)
		return nil
	}
	if pid != 0 {
		r.log.Info("exit recorder started", "pid", pid, "dir", r.cfg.ExitDir)
	}
	return d
}

func (r *Runtime) closeExits() {
	if r.exits != nil {
		r.exits.Close()
	}
}

// get returns the container with id.
func (r *Runtime) get(id string) (*container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	c := r.containers[id]
	if c == nil {
		return nil, fmt.Errorf("container %q: %w", id, ErrContainerNotFound)
	}
	return c, nil
}

// ImportImages imports every image of an OCI layout or docker archive tar
// (optionally gzip-compressed) at path, with all the tags inside.
func (r *Runtime) ImportImages(ctx context.Context, path string) ([]Image, error) {
	return r.images.Import(ctx, path)
}

// Image returns the stored image matching ref ("nginx" ==
// "docker.io/library/nginx:latest", or an image ID); ErrImageNotPresent if none.
func (r *Runtime) Image(ctx context.Context, ref string) (Image, error) {
	rec, err := r.images.Get(ref)
	if err != nil {
		return Image{}, err
	}
	return rec.Image, nil
}

// Images lists the stored images.
func (r *Runtime) Images(ctx context.Context) ([]Image, error) {
	recs := r.images.List()
	out := make([]Image, len(recs))
	for i, rec := range recs {
		out[i] = rec.Image
	}
	return out, nil
}

// RemoveImage removes a name of an image, or the image when ref is its ID
// or last name. Layer snapshots that containers still use are kept (they
// are left unreferenced; a later import of an image with them reuses them).
func (r *Runtime) RemoveImage(ctx context.Context, ref string) error {
	r.mu.Lock()
	cs := make([]*container, 0, len(r.containers))
	for _, c := range r.containers {
		cs = append(cs, c)
	}
	r.mu.Unlock()
	inUse := map[string]bool{}
	for _, c := range cs {
		c.mu.Lock()
		if !c.removed && c.h != nil {
			for _, id := range c.h.ChainIDs {
				inUse[id] = true
			}
		}
		c.mu.Unlock()
	}
	return r.images.Remove(ref, func(chainID string) bool { return inUse[chainID] })
}

// ListContainers returns the status of every container, oldest first.
func (r *Runtime) ListContainers(ctx context.Context) ([]ContainerStatus, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	cs := make([]*container, 0, len(r.containers))
	for _, c := range r.containers {
		cs = append(cs, c)
	}
	r.mu.Unlock()
	out := make([]ContainerStatus, 0, len(cs))
	for _, c := range cs {
		c.mu.Lock()
		if !c.removed {
			out = append(out, c.h.status())
		}
		c.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// ContainerStatus returns the status of one container; ErrContainerNotFound
// if there is none with id.
func (r *Runtime) ContainerStatus(ctx context.Context, id string) (ContainerStatus, error) {
	c, err := r.get(id)
	if err != nil {
		return ContainerStatus{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return ContainerStatus{}, fmt.Errorf("container %q: %w", id, ErrContainerNotFound)
	}
	return c.h.status(), nil
}

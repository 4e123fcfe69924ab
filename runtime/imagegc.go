package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"kedge.dev/kedge/runtime/images"
)

// ImageGCConfig configures an ImageGC.
type ImageGCConfig struct {
	// HighPercent is the use of the image store's filesystem above which
	// images are removed; default 85.
	HighPercent int
	// LowPercent is the use to get back to; default 80.
	LowPercent int
	// Interval between checks; default 5 minutes.
	Interval time.Duration
}

// DefaultImageGCConfig returns kubelet's thresholds (85% → 80%).
func DefaultImageGCConfig() ImageGCConfig {
	return ImageGCConfig{HighPercent: 85, LowPercent: 80, Interval: 5 * time.Minute}
}

// Validate reports the first problem of the configuration.
func (c ImageGCConfig) Validate() error {
	if c.HighPercent <= 0 || c.HighPercent > 100 || c.LowPercent < 0 || c.LowPercent >= c.HighPercent {
		return fmt.Errorf("image GC: want 0 <= LowPercent (%d) < HighPercent (%d) <= 100", c.LowPercent, c.HighPercent)
	}
	if c.Interval <= 0 {
		return errors.New("image GC: Interval must be positive")
	}
	return nil
}

// ImageGC removes unused images, least recently used first, when the image
// store's filesystem fills past HighPercent. Images used by any container
// (running or exited but not removed) are never removed. Collect may be
// called from any goroutine; Run calls it every Interval.
type ImageGC struct {
	rt  *Runtime
	cfg ImageGCConfig

	mu       sync.Mutex
	lastUsed map[string]time.Time // image ID → last time a container used it
}

// NewImageGC builds an ImageGC for rt's image store.
func NewImageGC(rt *Runtime, cfg ImageGCConfig) (*ImageGC, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &ImageGC{rt: rt, cfg: cfg, lastUsed: map[string]time.Time{}}, nil
}

// Run collects every Interval until ctx ends; it returns nil then.
func (g *ImageGC) Run(ctx context.Context) error {
	t := time.NewTicker(g.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := g.Collect(ctx); err != nil {
			g.rt.log.Warn("image garbage collection failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Collect measures the filesystem, removes what PlanGC selects and returns
// the removed image IDs.
func (g *ImageGC) Collect(ctx context.Context) ([]string, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(g.rt.cfg.Root, &st); err != nil {
		return nil, fmt.Errorf("image GC: statfs %s: %w", g.rt.cfg.Root, err)
	}
	// Bsize is int32 on 32-bit ARM: widen before multiplying.
	usage := images.DiskUsage{Total: int64(st.Blocks) * int64(st.Bsize), Used: int64(st.Blocks-st.Bfree) * int64(st.Bsize)}
	return g.collect(ctx, usage, time.Now())
}

func (g *ImageGC) collect(ctx context.Context, usage images.DiskUsage, now time.Time) ([]string, error) {
	inUse := g.rt.imagesInUse()
	g.mu.Lock()
	for id := range inUse {
		g.lastUsed[id] = now
	}
	var cands []images.GCCandidate
	for _, r := range g.rt.images.List() {
		last := r.Stored
		if t, ok := g.lastUsed[r.ID]; ok && t.After(last) {
			last = t
		}
		cands = append(cands, images.GCCandidate{ID: r.ID, Size: r.Size, LastUsed: last, InUse: inUse[r.ID]})
	}
	g.mu.Unlock()
	plan := images.PlanGC(usage, cands, g.cfg.HighPercent, g.cfg.LowPercent)
	var removed []string
	var errs []error
	for _, id := range plan {
		if err := g.rt.RemoveImage(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, id)
		g.rt.log.Info("image removed by garbage collection", "id", id,
			"used", usage.Used, "total", usage.Total, "high", g.cfg.HighPercent, "low", g.cfg.LowPercent)
	}
	return removed, errors.Join(errs...)
}

// imagesInUse returns the IDs of images that containers use.
func (r *Runtime) imagesInUse() map[string]bool {
	r.mu.Lock()
	cs := make([]*container, 0, len(r.containers))
	for _, c := range r.containers {
		cs = append(cs, c)
	}
	r.mu.Unlock()
	out := map[string]bool{}
	for _, c := range cs {
		c.mu.Lock()
		if !c.removed && c.h != nil && c.h.ImageID != "" {
			out[c.h.ImageID] = true
		}
		c.mu.Unlock()
	}
	return out
}

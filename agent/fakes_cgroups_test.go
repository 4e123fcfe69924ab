package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"kedge.dev/kedge/runtime"
)

func (r *fakeRuntime) EnsureCgroup(_ context.Context, path string, res runtime.Resources) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cgroups[path] = res
	return nil
}

func (r *fakeRuntime) RemoveCgroup(_ context.Context, path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, s := range r.specs {
		if _, ok := r.containers[id]; ok && strings.HasPrefix(s.CgroupParent, path) {
			return fmt.Errorf("cgroup %s holds %s: %w", path, id, runtime.ErrInvalidState)
		}
	}
	delete(r.cgroups, path)
	return nil
}

// Stats reports fixed figures per running container: 1 ms of CPU and
// 1 MiB of working set each, and the same pod network counters.
func (r *fakeRuntime) Stats(_ context.Context, id string) (runtime.ContainerStats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return runtime.ContainerStats{}, fmt.Errorf("container %q: %w", id, runtime.ErrContainerNotFound)
	}
	if c.State != runtime.StateRunning {
		return runtime.ContainerStats{}, fmt.Errorf("container %q: %w", id, runtime.ErrInvalidState)
	}
	return runtime.ContainerStats{
		Timestamp: time.Now(), CPUUsageNanos: 1e6, MemoryUsageBytes: 2 << 20, MemoryWorkingSetBytes: 1 << 20,
		Network: runtime.NetworkStats{RxBytes: 100, TxBytes: 50}, RootfsUsedBytes: 4096, RootfsInodesUsed: 1,
	}, nil
}

// cgroupShares returns the cpu.shares EnsureCgroup last set on path.
func (r *fakeRuntime) cgroupShares(path string) (uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res, ok := r.cgroups[path]
	return res.CPUShares, ok
}

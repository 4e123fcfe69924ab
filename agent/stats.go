package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"kedge.dev/kedge/runtime"
)

// PodStats is a sample of one pod's resource usage, for the summary API
// and metrics.
type PodStats struct {
	UID types.UID
	// Timestamp is when the sample was taken.
	Timestamp time.Time
	// CPUUsageNanos, MemoryUsageBytes and MemoryWorkingSetBytes are the sums
	// over the pod's running containers.
	CPUUsageNanos, MemoryUsageBytes, MemoryWorkingSetBytes uint64
	// Network are the counters of the pod's network namespace (zero for a
	// hostNetwork pod).
	Network runtime.NetworkStats
	// Containers are the samples of the running containers.
	Containers []ContainerStats
}

// ContainerStats is one container's sample.
type ContainerStats struct {
	// Name is the container's name in the pod spec.
	Name string
	runtime.ContainerStats
}

// PodStats samples the running containers of pod uid. A pod without a
// running container has an empty sample.
func (a *Agent) PodStats(ctx context.Context, uid types.UID) (PodStats, error) {
	cs, err := a.podContainers(ctx, uid)
	if err != nil {
		return PodStats{}, err
	}
	ps := PodStats{UID: uid, Timestamp: time.Now()}
	for _, c := range cs {
		if c.State != runtime.StateRunning {
			continue
		}
		st, err := a.rt.Stats(ctx, c.ID)
		if errors.Is(err, runtime.ErrInvalidState) || errors.Is(err, runtime.ErrContainerNotFound) {
			continue // ended since it was listed
		}
		if err != nil {
			return PodStats{}, fmt.Errorf("pod %s: %w", uid, err)
		}
		ps.CPUUsageNanos += st.CPUUsageNanos
		ps.MemoryUsageBytes += st.MemoryUsageBytes
		ps.MemoryWorkingSetBytes += st.MemoryWorkingSetBytes
		// Every container sees the same pod network namespace.
		ps.Network = st.Network
		ps.Containers = append(ps.Containers, ContainerStats{Name: c.Labels[LabelContainerName], ContainerStats: st})
	}
	return ps, nil
}

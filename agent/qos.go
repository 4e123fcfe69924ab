package agent

import (
	"context"
	"fmt"
	"path"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"kedge.dev/kedge/runtime"
)

// burstableShares is the cpu.shares kubelet's QoS container manager gives
// the burstable QoS cgroup (setCPUCgroupConfig): the cpu requests of the
// node's active Burstable pods summed and converted like a container's, so
// that Burstable pods together weigh what they asked for against the
// Guaranteed pods beside them. Pods of another QoS class and pods in a
// terminal phase do not count. It is pure.
func burstableShares(pods []*corev1.Pod) uint64 {
	var milli int64
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || podQOS(p) != corev1.PodQOSBurstable {
			continue
		}
		milli += podCPURequest(p)
	}
	return milliCPUToShares(milli)
}

// qosCgroups keeps the QoS cgroup setting that depends on which pods run:
// the burstable cgroup's cpu.shares (burstableShares). It tracks the pods
// whose cgroup the agent made (admit) or found at start (adopt) until they
// finish or are removed (forget), and rewrites the setting when the
// result changes, as kubelet updates it when it creates a pod's cgroup and
// when it has stopped a pod. It is safe for concurrent use; the lock is
// held across the cgroup write so that writes land in the order of the
// changes (the write is a few small file writes).
type qosCgroups struct {
	cg   podCgroups
	path string // <root>/kubepods/burstable

	mu      sync.Mutex
	pods    map[types.UID]*corev1.Pod
	written uint64 // shares last written; 0 before the first write or after a failed one
}

func newQOSCgroups(cg podCgroups, root string) *qosCgroups {
	return &qosCgroups{cg: cg, path: path.Join(root, "kubepods", "burstable"), pods: map[types.UID]*corev1.Pod{}}
}

// adopt adds the pods the agent runs again after a restart and writes the
// setting even when unchanged, since the cgroup may hold what an earlier
// agent computed from other pods.
func (q *qosCgroups) adopt(ctx context.Context, pods []*corev1.Pod) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, p := range pods {
		q.pods[p.UID] = p.DeepCopy()
	}
	q.written = 0
	return q.apply(ctx)
}

// admit adds (or refreshes) a pod whose cgroup is about to be made; only
// Burstable pods change the setting.
func (q *qosCgroups) admit(ctx context.Context, pod *corev1.Pod) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pods[pod.UID] = pod.DeepCopy()
	return q.apply(ctx)
}

// forget drops a pod that finished or was removed.
func (q *qosCgroups) forget(ctx context.Context, uid types.UID) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.pods[uid]; !ok {
		return nil
	}
	delete(q.pods, uid)
	return q.apply(ctx)
}

// apply writes the setting when it differs from the last one written.
// Callers hold q.mu.
func (q *qosCgroups) apply(ctx context.Context) error {
	pods := make([]*corev1.Pod, 0, len(q.pods))
	for _, p := range q.pods {
		pods = append(pods, p)
	}
	shares := burstableShares(pods)
	if shares == q.written {
		return nil
	}
	if err := q.cg.EnsureCgroup(ctx, q.path, runtime.Resources{CPUShares: shares}); err != nil {
		q.written = 0 // retried by the next change
		return fmt.Errorf("set cpu.shares of the burstable QoS cgroup: %w", err)
	}
	q.written = shares
	return nil
}

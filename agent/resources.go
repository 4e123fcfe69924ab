package agent

import (
	"context"
	"path"

	corev1 "k8s.io/api/core/v1"

	"kedge.dev/kedge/runtime"
)

// Pods' cgroups follow kubelet's QoS hierarchy under the agent's cgroup
// root (kubelet's names, cgroupfs driver):
//
//	<root>/kubepods/pod<uid>/<container ID>             Guaranteed
//	<root>/kubepods/burstable/pod<uid>/<container ID>   Burstable
//	<root>/kubepods/besteffort/pod<uid>/<container ID>  BestEffort
//
// The pod cgroup carries the pod's limits (the sum of its containers'), as
// kubelet's ResourceConfigForPod sets them.

// OOM score adjustments kubelet gives each QoS class.
const (
	guaranteedOOMScoreAdj = -997
	besteffortOOMScoreAdj = 1000
)

// cpuPeriod is the CFS period kubelet uses, in µs.
const cpuPeriod = 100000

// podQOS returns the pod's QoS class, computed from its containers as
// Kubernetes does (status.qosClass may not be set yet on a fresh pod).
func podQOS(pod *corev1.Pod) corev1.PodQOSClass {
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	guaranteed := true
	all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[name]
			lim, hasLim := c.Resources.Limits[name]
			if hasReq && !req.IsZero() {
				requests[name] = req
			}
			if hasLim && !lim.IsZero() {
				limits[name] = lim
			} else {
				guaranteed = false
			}
			if hasReq && hasLim && req.Cmp(lim) != 0 {
				guaranteed = false
			}
		}
	}
	switch {
	case len(requests) == 0 && len(limits) == 0:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// podCgroup is the pod's cgroup path.
func podCgroup(root string, pod *corev1.Pod) string {
	name := "pod" + string(pod.UID)
	switch podQOS(pod) {
	case corev1.PodQOSGuaranteed:
		return path.Join(root, "kubepods", name)
	case corev1.PodQOSBurstable:
		return path.Join(root, "kubepods", "burstable", name)
	}
	return path.Join(root, "kubepods", "besteffort", name)
}

// milliCPUToShares is kubelet's conversion: 1 CPU = 1024 shares, at least 2.
func milliCPUToShares(milli int64) uint64 {
	if s := milli * 1024 / 1000; s >= 2 {
		return uint64(s)
	}
	return 2
}

// milliCPUToQuota is kubelet's conversion over a 100 ms period, at least
// 1 ms.
func milliCPUToQuota(milli int64) int64 {
	return max(milli*cpuPeriod/1000, 1000)
}

// containerResources converts requests and limits to cgroup settings the
// way kubelet does: shares from the cpu request (2 when none), quota from
// the cpu limit over a 100 ms period, and the memory limit.
func containerResources(c *corev1.Container) runtime.Resources {
	var r runtime.Resources
	cpuReq, hasReq := c.Resources.Requests[corev1.ResourceCPU]
	cpuLim, hasLim := c.Resources.Limits[corev1.ResourceCPU]
	if !hasReq && hasLim {
		cpuReq, hasReq = cpuLim, true // the API server's defaulting
	}
	r.CPUShares = 2
	if hasReq {
		r.CPUShares = milliCPUToShares(cpuReq.MilliValue())
	}
	if hasLim && !cpuLim.IsZero() {
		r.CPUPeriod = cpuPeriod
		r.CPUQuota = milliCPUToQuota(cpuLim.MilliValue())
	}
	if mem, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && !mem.IsZero() {
		r.MemoryLimit = mem.Value()
	}
	return r
}

// podResources are the pod cgroup's limits, as kubelet's
// ResourceConfigForPod: shares from the summed cpu requests, a quota and a
// memory limit only when every container has that limit (summed; an init
// container counts with the largest of itself and the app containers'
// sum), shares=2 for BestEffort pods, and the node's pod pids limit.
func podResources(pod *corev1.Pod, pidsLimit int64) runtime.Resources {
	type sums struct {
		cpuReq, cpuLim, memLim int64
		allCPULim, allMemLim   bool
	}
	add := func(cs []corev1.Container, each func(s *sums, c *corev1.Container)) sums {
		s := sums{allCPULim: true, allMemLim: true}
		for i := range cs {
			each(&s, &cs[i])
		}
		return s
	}
	collect := func(s *sums, c *corev1.Container) {
		req, hasReq := c.Resources.Requests[corev1.ResourceCPU]
		lim, hasLim := c.Resources.Limits[corev1.ResourceCPU]
		if !hasReq && hasLim {
			req = lim
		}
		s.cpuReq += req.MilliValue()
		if hasLim && !lim.IsZero() {
			s.cpuLim += lim.MilliValue()
		} else {
			s.allCPULim = false
		}
		if m, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && !m.IsZero() {
			s.memLim += m.Value()
		} else {
			s.allMemLim = false
		}
	}
	app := add(pod.Spec.Containers, collect)
	for i := range pod.Spec.InitContainers {
		one := add(pod.Spec.InitContainers[i:i+1], collect)
		app.cpuReq = max(app.cpuReq, one.cpuReq)
		app.cpuLim = max(app.cpuLim, one.cpuLim)
		app.memLim = max(app.memLim, one.memLim)
		app.allCPULim = app.allCPULim && one.allCPULim
		app.allMemLim = app.allMemLim && one.allMemLim
	}
	var r runtime.Resources
	if pidsLimit > 0 {
		r.PidsLimit = pidsLimit
	}
	if podQOS(pod) == corev1.PodQOSBestEffort {
		r.CPUShares = 2
		return r
	}
	r.CPUShares = milliCPUToShares(app.cpuReq)
	if app.allCPULim {
		r.CPUPeriod, r.CPUQuota = cpuPeriod, milliCPUToQuota(app.cpuLim)
	}
	if app.allMemLim {
		r.MemoryLimit = app.memLim
	}
	return r
}

// oomScoreAdj is the container's oom_score_adj as kubelet computes it:
// -997 for Guaranteed, 1000 for BestEffort, and for Burstable
// 1000 - 1000*memoryRequest/memoryCapacity kept within [3, 999] (kubelet's
// current bounds: above any Guaranteed pod, below BestEffort).
func oomScoreAdj(pod *corev1.Pod, c *corev1.Container, memCapacity int64) int {
	switch podQOS(pod) {
	case corev1.PodQOSGuaranteed:
		return guaranteedOOMScoreAdj
	case corev1.PodQOSBestEffort:
		return besteffortOOMScoreAdj
	}
	if memCapacity <= 0 {
		return besteffortOOMScoreAdj - 1
	}
	req := c.Resources.Requests.Memory().Value()
	adj := 1000 - (1000*req)/memCapacity
	if adj < 1000+guaranteedOOMScoreAdj {
		return 1000 + guaranteedOOMScoreAdj
	}
	if adj >= besteffortOOMScoreAdj {
		return besteffortOOMScoreAdj - 1
	}
	return int(adj)
}

// memCapacity is the node's memory capacity in bytes (0 when unknown).
func (a *Agent) memCapacity() int64 {
	q := hostCapacity(a.cfg.DataDir, a.cfg.Capacity)[corev1.ResourceMemory]
	return q.Value()
}

// ensurePodCgroup makes the pod's cgroup with its limits; for a BestEffort
// pod it first gives the besteffort QoS cgroup kubelet's minimum weight
// (cpu.shares=2), so that best-effort pods together yield to all others.
func (a *Agent) ensurePodCgroup(ctx context.Context, pod *corev1.Pod, cgroup string) error {
	if podQOS(pod) == corev1.PodQOSBestEffort {
		if err := a.rt.EnsureCgroup(ctx, path.Dir(cgroup), runtime.Resources{CPUShares: 2}); err != nil {
			return err
		}
	}
	return a.rt.EnsureCgroup(ctx, cgroup, podResources(pod, a.cfg.PodPidsLimit))
}

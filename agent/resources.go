package agent

import (
	"context"
	"fmt"
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

// Bounds of cpu.shares kubelet keeps to (the kernel's).
const (
	minShares = 2
	maxShares = 262144
)

// milliCPUToShares is kubelet's conversion: 1 CPU = 1024 shares, within
// [2, 262144].
func milliCPUToShares(milli int64) uint64 {
	return uint64(min(max(milli*1024/1000, minShares), maxShares))
}

// cpuRequest is a container's cpu request in millicores: its limit when it
// has no request (the API server's defaulting, for pods that skipped it).
func cpuRequest(c *corev1.Container) int64 {
	if req, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
		return req.MilliValue()
	}
	lim := c.Resources.Limits[corev1.ResourceCPU]
	return lim.MilliValue()
}

// podCPURequest is the pod's cpu request in millicores as kubelet's
// resource.PodRequests computes it: the app containers' sum plus the
// sidecars' (init containers with restartPolicy Always), at least the
// largest need of one init container (itself plus the sidecars started
// before it), plus the pod overhead.
func podCPURequest(pod *corev1.Pod) int64 {
	var sum, sidecars, initMax int64
	for i := range pod.Spec.Containers {
		sum += cpuRequest(&pod.Spec.Containers[i])
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		req := cpuRequest(c)
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sum += req
			sidecars += req
			initMax = max(initMax, sidecars)
			continue
		}
		initMax = max(initMax, sidecars+req)
	}
	sum = max(sum, initMax)
	if o, ok := pod.Spec.Overhead[corev1.ResourceCPU]; ok {
		sum += o.MilliValue()
	}
	return sum
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
		s.cpuReq += cpuRequest(c)
		lim, hasLim := c.Resources.Limits[corev1.ResourceCPU]
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

// ensurePodCgroup makes the pod's cgroup with its limits. Before, as
// kubelet does, it sets the pod's QoS cgroup: for a BestEffort pod the
// besteffort cgroup gets the minimum weight (cpu.shares=2), so that
// best-effort pods together yield to all others; for a Burstable pod the
// burstable cgroup's weight is recomputed with this pod counted.
func (a *Agent) ensurePodCgroup(ctx context.Context, pod *corev1.Pod, cgroup string) error {
	switch podQOS(pod) {
	case corev1.PodQOSBestEffort:
		if err := a.rt.EnsureCgroup(ctx, path.Dir(cgroup), runtime.Resources{CPUShares: minShares}); err != nil {
			return err
		}
	case corev1.PodQOSBurstable:
		if err := a.qos.admit(ctx, pod); err != nil {
			return err
		}
	}
	return a.rt.EnsureCgroup(ctx, cgroup, podResources(pod, a.cfg.PodPidsLimit))
}

// removePodCgroup removes the cgroup of a pod whose containers are gone,
// then drops the pod from the burstable cgroup's weight.
func (a *Agent) removePodCgroup(ctx context.Context, pod *corev1.Pod) error {
	if err := a.rt.RemoveCgroup(ctx, podCgroup(a.cfg.CgroupRoot, pod)); err != nil {
		return fmt.Errorf("remove pod cgroup: %w", err)
	}
	a.podStopped(ctx, pod)
	return nil
}

// podStopped drops a pod whose containers have all stopped (it finished,
// or is being removed) from the burstable cgroup's weight, as kubelet
// updates its QoS cgroups once it has killed a pod. A failed write is only
// logged: it must not hold up the pod's teardown, and the next change
// writes the setting again.
func (a *Agent) podStopped(ctx context.Context, pod *corev1.Pod) {
	if err := a.qos.forget(ctx, pod.UID); err != nil {
		a.logLimited("qos-cgroups", "updating the burstable QoS cgroup failed", "err", err)
	}
}

// adoptQOSCgroups sets the burstable cgroup's weight from the pods the
// agent finds in its cache at start (those it runs again), rather than
// keeping what an earlier agent wrote.
func (a *Agent) adoptQOSCgroups(ctx context.Context, cached []*corev1.Pod) {
	var mine []*corev1.Pod
	for _, p := range cached {
		if p.Spec.NodeName == a.cfg.NodeName {
			mine = append(mine, p)
		}
	}
	if err := a.qos.adopt(ctx, mine); err != nil {
		a.log.Warn("setting the burstable QoS cgroup failed", "err", err)
	}
}

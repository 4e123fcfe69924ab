package agent

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// TestPodCgroupAndStats: a Guaranteed pod gets its pod cgroup with the
// summed limits before its containers, its containers below it, stats of
// its running containers, and the cgroup goes with the pod.
func TestPodCgroupAndStats(t *testing.T) {
	h := newHarness(t, "busybox")
	h.cfg.PodPidsLimit = 77
	h.start()
	pod := newPod("web", corev1.RestartPolicyAlways, "busybox")
	lim := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("64Mi")}
	pod.Spec.Containers[0].Resources = corev1.ResourceRequirements{Limits: lim, Requests: lim}
	pod.Spec.Containers = append(pod.Spec.Containers, *pod.Spec.Containers[0].DeepCopy())
	pod.Spec.Containers[1].Name = "side"
	h.api.addPod(pod)
	h.eventually("pod Running", func() bool { return h.status("web").Phase == corev1.PodRunning })

	const cg = "/kedge/kubepods/poduid-web"
	h.rt.mu.Lock()
	res, ok := h.rt.cgroups[cg]
	parent := h.rt.specs["uid-web-app-0"].CgroupParent
	h.rt.mu.Unlock()
	if !ok || res.MemoryLimit != 128<<20 || res.CPUQuota != 100000 || res.CPUShares != 1024 || res.PidsLimit != 77 {
		t.Fatalf("pod cgroup %s: %+v (made: %v)", cg, res, ok)
	}
	if parent != cg {
		t.Errorf("container cgroup parent %q, want %q", parent, cg)
	}

	st, err := h.agent.PodStats(context.Background(), "uid-web")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Containers) != 2 || st.CPUUsageNanos != 2e6 || st.MemoryWorkingSetBytes != 2<<20 || st.Network.RxBytes != 100 {
		t.Errorf("pod stats %+v", st)
	}

	h.api.markDeleted("default", "web", 0)
	h.eventually("pod cgroup removed", func() bool {
		h.rt.mu.Lock()
		defer h.rt.mu.Unlock()
		_, ok := h.rt.cgroups[cg]
		return !ok
	})
}

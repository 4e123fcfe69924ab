package agent

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"

	"kedge.dev/kedge/runtime"
)

const burstableCgroup = "/kedge/kubepods/burstable"

// burstablePod is a pod of the harness with one container requesting cpu.
func burstablePod(name, cpu string, policy corev1.RestartPolicy) *corev1.Pod {
	p := newPod(name, policy, "busybox")
	p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}
	return p
}

// waitShares waits for the burstable QoS cgroup to get want.
func (h *harness) waitShares(what string, want uint64) {
	h.t.Helper()
	h.eventually(what, func() bool {
		got, ok := h.rt.cgroupShares(burstableCgroup)
		return ok && got == want
	})
}

// TestBurstableQOSCgroupShares follows the burstable QoS cgroup's
// cpu.shares as Burstable pods come, finish and go, and across an agent
// restart that adopts running pods without creating their cgroups again.
func TestBurstableQOSCgroupShares(t *testing.T) {
	h := newHarness(t, "busybox")
	h.api.addPod(burstablePod("a", "100m", corev1.RestartPolicyAlways))
	h.start()
	h.waitShares("shares of a", 102)

	h.api.addPod(burstablePod("b", "250m", corev1.RestartPolicyAlways))
	h.waitShares("shares of a and b", 358)
	guaranteed := newPod("g", corev1.RestartPolicyAlways, "busybox")
	lim := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("64Mi")}
	guaranteed.Spec.Containers[0].Resources = corev1.ResourceRequirements{Limits: lim, Requests: lim}
	h.api.addPod(guaranteed)
	job := burstablePod("job", "500m", corev1.RestartPolicyNever)
	h.api.addPod(job)
	h.waitShares("shares with the job", 870)
	h.eventually("g running", func() bool { return h.status("g").Phase == corev1.PodRunning })
	if got, _ := h.rt.cgroupShares(burstableCgroup); got != 870 {
		t.Fatalf("a Guaranteed pod changed the burstable shares to %d", got)
	}

	// A finished pod no longer counts, though it is not deleted yet.
	h.eventually("job running", func() bool { return h.status("job").Phase == corev1.PodRunning })
	h.rt.exit("uid-job-app-0", 0)
	h.waitShares("shares after the job finished", 358)

	// A deleted pod no longer counts once its cgroup is gone.
	h.api.markDeleted("default", "b", 0)
	h.waitShares("shares after b was deleted", 102)

	// A new agent sets the shares from the pods it finds running again,
	// whatever the cgroup held.
	h.stop()
	if err := h.rt.EnsureCgroup(context.Background(), burstableCgroup, runtime.Resources{CPUShares: 999}); err != nil {
		t.Fatal(err)
	}
	h.rt.mu.Lock()
	created := h.rt.created
	h.rt.mu.Unlock()
	h.start()
	h.waitShares("shares after the restart", 102)
	h.rt.mu.Lock()
	defer h.rt.mu.Unlock()
	if h.rt.created != created {
		t.Errorf("the restarted agent created %d containers; the shares must come from adoption", h.rt.created-created)
	}
}

// recordingCgroups records EnsureCgroup calls and fails while fail is set.
type recordingCgroups struct {
	writes []uint64
	fail   bool
}

func (r *recordingCgroups) EnsureCgroup(_ context.Context, path string, res runtime.Resources) error {
	if path != burstableCgroup {
		return errors.New("unexpected cgroup " + path)
	}
	if r.fail {
		return errors.New("cgroupfs unavailable")
	}
	r.writes = append(r.writes, res.CPUShares)
	return nil
}

func (r *recordingCgroups) RemoveCgroup(context.Context, string) error { return nil }

// TestQOSCgroupsWrites: the setting is written when it changes, always at
// adoption, and again after a failed write.
func TestQOSCgroupsWrites(t *testing.T) {
	ctx := context.Background()
	cg := &recordingCgroups{}
	q := newQOSCgroups(cg, "/kedge")
	pod := func(uid, cpu string) *corev1.Pod {
		p := burstablePod(uid, cpu, corev1.RestartPolicyAlways)
		p.UID = types.UID(uid)
		return p
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(q.adopt(ctx, nil))
	must(q.admit(ctx, pod("a", "100m")))
	must(q.admit(ctx, pod("a", "100m"))) // each container start of a: no change
	must(q.admit(ctx, podWith(res("", "1/1Gi"))))
	must(q.admit(ctx, pod("b", "1")))
	must(q.forget(ctx, "unknown"))
	must(q.forget(ctx, "b"))
	must(q.adopt(ctx, []*corev1.Pod{pod("a", "100m")}))
	if want := []uint64{2, 102, 1126, 102, 102}; !equalUints(cg.writes, want) {
		t.Fatalf("writes %v, want %v", cg.writes, want)
	}

	cg.writes, cg.fail = nil, true
	if err := q.admit(ctx, pod("c", "1")); err == nil {
		t.Fatal("a failed write was not reported")
	}
	cg.fail = false
	must(q.forget(ctx, "c")) // back to what was last written, yet unsure after the failure
	if want := []uint64{102}; !equalUints(cg.writes, want) {
		t.Fatalf("writes after a failure %v, want %v", cg.writes, want)
	}
}

func equalUints(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

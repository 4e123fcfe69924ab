package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"kedge.dev/kedge/runtime"
)

func res(req, lim string) corev1.ResourceRequirements {
	parse := func(s string) corev1.ResourceList {
		if s == "" {
			return nil
		}
		var cpu, mem string
		for i := 0; i < len(s); i++ {
			if s[i] == '/' {
				cpu, mem = s[:i], s[i+1:]
			}
		}
		rl := corev1.ResourceList{}
		if cpu != "" {
			rl[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			rl[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		return rl
	}
	return corev1.ResourceRequirements{Requests: parse(req), Limits: parse(lim)}
}

func podWith(rs ...corev1.ResourceRequirements) *corev1.Pod {
	p := &corev1.Pod{}
	p.UID = "u1"
	for i, r := range rs {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: string(rune('a' + i)), Resources: r})
	}
	return p
}

func TestPodQOSAndCgroup(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.Pod
		qos  corev1.PodQOSClass
		path string
	}{
		{"besteffort", podWith(res("", "")), corev1.PodQOSBestEffort, "/k/kubepods/besteffort/podu1"},
		{"guaranteed", podWith(res("", "500m/64Mi")), corev1.PodQOSGuaranteed, "/k/kubepods/podu1"},
		{"guaranteed equal", podWith(res("1/1Gi", "1/1Gi"), res("", "2/2Gi")), corev1.PodQOSGuaranteed, "/k/kubepods/podu1"},
		{"burstable request only", podWith(res("100m/", "")), corev1.PodQOSBurstable, "/k/kubepods/burstable/podu1"},
		{"burstable one without limits", podWith(res("", "1/1Gi"), res("", "")), corev1.PodQOSBurstable, "/k/kubepods/burstable/podu1"},
		{"burstable cpu only limit", podWith(res("", "1/")), corev1.PodQOSBurstable, "/k/kubepods/burstable/podu1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := podQOS(tc.pod); got != tc.qos {
				t.Errorf("qos %s, want %s", got, tc.qos)
			}
			if got := podCgroup("/k", tc.pod); got != tc.path {
				t.Errorf("cgroup %s, want %s", got, tc.path)
			}
		})
	}
}

func TestPodResources(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.Pod
		want runtime.Resources
	}{
		{"besteffort", podWith(res("", "")), runtime.Resources{CPUShares: 2, PidsLimit: 100}},
		{"guaranteed sums", podWith(res("", "500m/64Mi"), res("", "250m/32Mi")),
			runtime.Resources{CPUShares: 768, CPUPeriod: 100000, CPUQuota: 75000, MemoryLimit: 96 << 20, PidsLimit: 100}},
		{"burstable, one without limits", podWith(res("", "500m/64Mi"), res("100m/", "")),
			runtime.Resources{CPUShares: 614, PidsLimit: 100}},
		{"burstable, tiny request", podWith(res("1m/", "")), runtime.Resources{CPUShares: 2, PidsLimit: 100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := podResources(tc.pod, 100); got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	// An init container larger than the app containers' sum sets the pod's
	// limits.
	p := podWith(res("", "100m/10Mi"))
	p.Spec.InitContainers = []corev1.Container{{Name: "init", Resources: res("", "1/1Gi")}}
	if got := podResources(p, -1); got.MemoryLimit != 1<<30 || got.CPUQuota != 100000 || got.CPUShares != 1024 || got.PidsLimit != 0 {
		t.Errorf("with init container: %+v", got)
	}
}

func TestOOMScoreAdj(t *testing.T) {
	const capacity = 1000 << 20
	tests := []struct {
		name string
		pod  *corev1.Pod
		want int
	}{
		{"guaranteed", podWith(res("", "1/100Mi")), -997},
		{"besteffort", podWith(res("", "")), 1000},
		{"burstable 10%", podWith(res("/100Mi", "")), 900},
		{"burstable no memory request", podWith(res("100m/", "")), 999},
		{"burstable all memory", podWith(res("/1000Mi", "/2000Mi")), 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := oomScoreAdj(tc.pod, &tc.pod.Spec.Containers[0], capacity); got != tc.want {
				t.Errorf("got %d want %d", got, tc.want)
			}
		})
	}
}

func TestBurstableShares(t *testing.T) {
	burstable := func(cpu string) *corev1.Pod { return podWith(res(cpu+"/", "")) }
	finished := burstable("1")
	finished.Status.Phase = corev1.PodSucceeded
	failed := burstable("1")
	failed.Status.Phase = corev1.PodFailed
	running := burstable("500m")
	running.Status.Phase = corev1.PodRunning
	withInit := burstable("100m")
	withInit.Spec.InitContainers = []corev1.Container{{Name: "init", Resources: res("1/", "")}}
	always := corev1.ContainerRestartPolicyAlways
	withSidecar := burstable("100m")
	withSidecar.Spec.InitContainers = []corev1.Container{
		{Name: "sidecar", RestartPolicy: &always, Resources: res("200m/", "")},
		{Name: "init", Resources: res("250m/", "")},
	}
	withOverhead := burstable("100m")
	withOverhead.Spec.Overhead = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m")}

	tests := []struct {
		name string
		pods []*corev1.Pod
		want uint64
	}{
		{"no pods", nil, 2},
		{"one", []*corev1.Pod{burstable("100m")}, 102},
		{"summed before converting", []*corev1.Pod{burstable("100m"), burstable("250m"), running}, 870},
		{"other classes ignored", []*corev1.Pod{burstable("100m"), podWith(res("", "1/1Gi")), podWith(res("", ""))}, 102},
		{"finished pods ignored", []*corev1.Pod{burstable("100m"), finished, failed}, 102},
		{"memory request only", []*corev1.Pod{podWith(res("/64Mi", ""))}, 2},
		{"cpu limit stands for a missing request", []*corev1.Pod{podWith(res("", "1/"))}, 1024},
		{"several containers", []*corev1.Pod{podWith(res("100m/", ""), res("300m/", "1/"))}, 409},
		{"init container larger than the app", []*corev1.Pod{withInit}, 1024},
		// max(100+200 app and sidecar, 200+250 init with the sidecar)
		{"sidecar", []*corev1.Pod{withSidecar}, 460},
		{"pod overhead", []*corev1.Pod{withOverhead}, 153},
		{"kernel maximum", []*corev1.Pod{burstable("200"), burstable("100")}, 262144},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := burstableShares(tc.pods); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

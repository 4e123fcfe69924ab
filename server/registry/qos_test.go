package registry

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// res builds a ResourceList from name/quantity pairs.
func res(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

func ctr(name string, requests, limits corev1.ResourceList) corev1.Container {
	return corev1.Container{Name: name, Image: "busybox", Resources: corev1.ResourceRequirements{Requests: requests, Limits: limits}}
}

// Cases follow Kubernetes' pkg/apis/core/helper/qos tests: requests are
// given as the API server stores them (already defaulted from limits).
func TestPodQOSClass(t *testing.T) {
	tests := []struct {
		name     string
		init     []corev1.Container
		ctrs     []corev1.Container
		podLevel *corev1.ResourceRequirements
		want     corev1.PodQOSClass
	}{
		{"no resources", nil, []corev1.Container{ctr("a", nil, nil), ctr("b", nil, nil)}, nil, corev1.PodQOSBestEffort},
		{"zero requests", nil, []corev1.Container{ctr("a", res("cpu", "0", "memory", "0"), nil)}, nil, corev1.PodQOSBestEffort},
		{"only hugepages and storage", nil, []corev1.Container{ctr("a", res("ephemeral-storage", "1Gi"), res("hugepages-2Mi", "2Mi"))}, nil, corev1.PodQOSBestEffort},
		{"equal cpu and memory", nil, []corev1.Container{
			ctr("a", res("cpu", "100m", "memory", "100Mi"), res("cpu", "100m", "memory", "100Mi")),
			ctr("b", res("cpu", "200m", "memory", "1Gi"), res("cpu", "200m", "memory", "1Gi")),
		}, nil, corev1.PodQOSGuaranteed},
		{"guaranteed with extra resource", nil, []corev1.Container{
			ctr("a", res("cpu", "1", "memory", "1Gi", "example.com/gpu", "1"), res("cpu", "1", "memory", "1Gi", "example.com/gpu", "1")),
		}, nil, corev1.PodQOSGuaranteed},
		{"only cpu limited", nil, []corev1.Container{ctr("a", res("cpu", "100m"), res("cpu", "100m"))}, nil, corev1.PodQOSBurstable},
		{"requests below limits", nil, []corev1.Container{
			ctr("a", res("cpu", "100m", "memory", "100Mi"), res("cpu", "200m", "memory", "100Mi")),
		}, nil, corev1.PodQOSBurstable},
		{"one guaranteed one best effort", nil, []corev1.Container{
			ctr("a", res("cpu", "100m", "memory", "100Mi"), res("cpu", "100m", "memory", "100Mi")),
			ctr("b", nil, nil),
		}, nil, corev1.PodQOSBurstable},
		{"requests only", nil, []corev1.Container{ctr("a", res("cpu", "100m"), nil)}, nil, corev1.PodQOSBurstable},
		{"guaranteed init and main", []corev1.Container{
			ctr("init", res("cpu", "500m", "memory", "1Gi"), res("cpu", "500m", "memory", "1Gi")),
		}, []corev1.Container{
			ctr("a", res("cpu", "100m", "memory", "100Mi"), res("cpu", "100m", "memory", "100Mi")),
		}, nil, corev1.PodQOSGuaranteed},
		{"best effort init makes guaranteed pod burstable", []corev1.Container{ctr("init", nil, nil)}, []corev1.Container{
			ctr("a", res("cpu", "100m", "memory", "100Mi"), res("cpu", "100m", "memory", "100Mi")),
		}, nil, corev1.PodQOSBurstable},
		{"burstable init", []corev1.Container{ctr("init", res("cpu", "1"), nil)}, []corev1.Container{ctr("a", nil, nil)}, nil, corev1.PodQOSBurstable},
		{"pod-level guaranteed", nil, []corev1.Container{ctr("a", nil, nil)},
			&corev1.ResourceRequirements{Requests: res("cpu", "1", "memory", "1Gi"), Limits: res("cpu", "1", "memory", "1Gi")}, corev1.PodQOSGuaranteed},
		{"pod-level burstable", nil, []corev1.Container{ctr("a", res("cpu", "1", "memory", "1Gi"), res("cpu", "1", "memory", "1Gi"))},
			&corev1.ResourceRequirements{Requests: res("cpu", "1")}, corev1.PodQOSBurstable},
		{"pod-level without cpu or memory is ignored", nil, []corev1.Container{ctr("a", res("cpu", "1", "memory", "1Gi"), res("cpu", "1", "memory", "1Gi"))},
			&corev1.ResourceRequirements{Limits: res("hugepages-2Mi", "2Mi")}, corev1.PodQOSGuaranteed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{InitContainers: tt.init, Containers: tt.ctrs, Resources: tt.podLevel}}
			if got := PodQOSClass(pod); got != tt.want {
				t.Errorf("PodQOSClass = %s, want %s", got, tt.want)
			}
		})
	}
}

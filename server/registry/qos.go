package registry

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// PodQOSClass computes a pod's quality-of-service class from its spec, as
// Kubernetes' ComputePodQOS does (pkg/apis/core/helper/qos), with pod-level
// resources (enabled by default since v1.34) taken into account:
//   - BestEffort: no container (regular or init) and no pod-level resources
//     set a non-zero cpu or memory request or limit;
//   - Guaranteed: every container sets non-zero cpu and memory limits and the
//     summed requests equal the summed limits (or, with pod-level resources,
//     the pod sets cpu and memory limits equal to its requests);
//   - Burstable: anything else.
//
// It does not read status.qosClass, which Kubernetes fixes at creation: call
// it on the spec the pod was created with. Only cpu and memory count;
// requests are not defaulted from limits here, so call it after defaulting
// (PrepareForCreate does) to get the class Kubernetes would record.
func PodQOSClass(pod *corev1.Pod) corev1.PodQOSClass {
	requests := corev1.ResourceList{}
	limits := corev1.ResourceList{}
	guaranteed := true
	if podLevelResourcesSet(pod) {
		addQOSResources(requests, pod.Spec.Resources.Requests)
		if len(pod.Spec.Resources.Limits) > 0 {
			found := addQOSResources(limits, pod.Spec.Resources.Limits)
			if !found[corev1.ResourceCPU] || !found[corev1.ResourceMemory] {
				guaranteed = false
			}
		}
	} else {
		// Ephemeral containers cannot set resources and do not count.
		all := make([]corev1.Container, 0, len(pod.Spec.Containers)+len(pod.Spec.InitContainers))
		all = append(all, pod.Spec.Containers...)
		all = append(all, pod.Spec.InitContainers...)
		for i := range all {
			addQOSResources(requests, all[i].Resources.Requests)
			found := addQOSResources(limits, all[i].Resources.Limits)
			if !found[corev1.ResourceCPU] || !found[corev1.ResourceMemory] {
				guaranteed = false
			}
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	if guaranteed {
		for name, req := range requests {
			if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
				guaranteed = false
				break
			}
		}
	}
	if guaranteed && len(requests) == len(limits) {
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// podLevelResourcesSet reports whether the pod sets cpu or memory in
// spec.resources, which then decides its class instead of the containers.
func podLevelResourcesSet(pod *corev1.Pod) bool {
	r := pod.Spec.Resources
	if r == nil {
		return false
	}
	for _, list := range []corev1.ResourceList{r.Requests, r.Limits} {
		for name := range list {
			if isQOSResource(name) {
				return true
			}
		}
	}
	return false
}

// isQOSResource reports whether a resource takes part in the QoS class:
// only cpu and memory do.
func isQOSResource(name corev1.ResourceName) bool {
	return name == corev1.ResourceCPU || name == corev1.ResourceMemory
}

// addQOSResources adds the positive cpu and memory quantities of from into
// into, and returns which of them were present and positive.
func addQOSResources(into, from corev1.ResourceList) map[corev1.ResourceName]bool {
	found := map[corev1.ResourceName]bool{}
	var zero resource.Quantity
	for name, q := range from {
		if !isQOSResource(name) || q.Cmp(zero) <= 0 {
			continue
		}
		found[name] = true
		sum := q.DeepCopy()
		if prev, ok := into[name]; ok {
			sum.Add(prev)
		}
		into[name] = sum
	}
	return found
}

package registry

import (
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// podStrategy holds the decisions for core/v1 pods
// (pkg/registry/core/pod/strategy.go).
type podStrategy struct {
	now func() time.Time
}

var _ Strategy = podStrategy{}

func podResource(now func() time.Time) Resource {
	return Resource{
		Version:           "v1",
		Kind:              "Pod",
		Resource:          "pods",
		SingularName:      "pod",
		ShortNames:        []string{"po"},
		Categories:        []string{"all"},
		Namespaced:        true,
		Verbs:             allVerbs(),
		Subresources:      []string{"status", "log", "binding", "exec", "attach", "portforward"},
		New:               func() runtime.Object { return &corev1.Pod{} },
		UnmarshalProtobuf: func(o runtime.Object, b []byte) error { return o.(*corev1.Pod).Unmarshal(b) },
		NewList:           func() runtime.Object { return &corev1.PodList{} },
		Strategy:          podStrategy{now: now},
	}
}

// PrepareForCreate applies defaults and what admission adds (priority,
// default tolerations), sets generation 1 and replaces the status with
// {phase: Pending, qosClass}, plus the SchedulingGated condition when the
// pod has scheduling gates.
func (podStrategy) PrepareForCreate(obj runtime.Object) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	DefaultPod(pod)
	admitPriority(pod, nil)
	admitDefaultTolerations(pod)
	pod.Generation = 1
	pod.Status = corev1.PodStatus{
		Phase:    corev1.PodPending,
		QOSClass: PodQOSClass(pod),
	}
	if len(pod.Spec.SchedulingGates) > 0 {
		pod.Status.Conditions = []corev1.PodCondition{{
			Type:    corev1.PodScheduled,
			Status:  corev1.ConditionFalse,
			Reason:  corev1.PodReasonSchedulingGated,
			Message: "Scheduling is blocked due to non-empty scheduling gates",
		}}
	}
}

// PrepareForUpdate applies defaults and admission as on create (keeping the
// priority the pod was created with), keeps the old status, and bumps the
// generation when the spec changed.
func (podStrategy) PrepareForUpdate(obj, old runtime.Object) {
	pod, ok1 := obj.(*corev1.Pod)
	oldPod, ok2 := old.(*corev1.Pod)
	if !ok1 || !ok2 {
		return
	}
	DefaultPod(pod)
	admitPriority(pod, oldPod)
	admitDefaultTolerations(pod)
	pod.Status = oldPod.Status
	pod.Generation = oldPod.Generation
	if !apiequality.Semantic.DeepEqual(pod.Spec, oldPod.Spec) {
		pod.Generation++
	}
}

// PrepareForStatusUpdate keeps the old spec and metadata, backfills the
// immutable qosClass and the observedGeneration values a client left out.
func (podStrategy) PrepareForStatusUpdate(obj, old runtime.Object) {
	pod, ok1 := obj.(*corev1.Pod)
	oldPod, ok2 := old.(*corev1.Pod)
	if !ok1 || !ok2 {
		return
	}
	pod.Spec = oldPod.Spec
	metav1.ResetObjectMetaForStatus(&pod.ObjectMeta, &oldPod.ObjectMeta)
	if pod.Status.QOSClass == "" {
		pod.Status.QOSClass = oldPod.Status.QOSClass
	}
	preserveObservedGeneration(pod, oldPod)
	syncMirroredPodFields(pod)
}

// preserveObservedGeneration keeps the old observedGeneration values when a
// client writes status without them (Kubernetes' preserveOldObservedGeneration):
// an old agent that does not know the fields must not erase them.
func preserveObservedGeneration(pod, oldPod *corev1.Pod) {
	if pod.Status.ObservedGeneration == 0 {
		pod.Status.ObservedGeneration = oldPod.Status.ObservedGeneration
	}
	oldGens := map[corev1.PodConditionType][]int64{}
	for _, c := range oldPod.Status.Conditions {
		oldGens[c.Type] = append(oldGens[c.Type], c.ObservedGeneration)
	}
	for i, c := range pod.Status.Conditions {
		var gen int64
		if gens := oldGens[c.Type]; len(gens) > 0 {
			gen, oldGens[c.Type] = gens[0], gens[1:]
		}
		if c.ObservedGeneration == 0 {
			pod.Status.Conditions[i].ObservedGeneration = gen
		}
	}
}

// ValidateCreate validates a new pod; see validatePodCreate.
func (podStrategy) ValidateCreate(obj runtime.Object) field.ErrorList {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return wrongType("*v1.Pod", obj)
	}
	return validatePodCreate(pod)
}

// ValidateUpdate validates an update of a pod or of its status; see
// validatePodUpdate.
func (podStrategy) ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return wrongType("*v1.Pod", obj)
	}
	oldPod, ok := old.(*corev1.Pod)
	if !ok {
		return wrongType("*v1.Pod", old)
	}
	return validatePodUpdate(pod, oldPod)
}

// Fields returns the pod fields Kubernetes lets a fieldSelector match
// (ToSelectableFields in pkg/registry/core/pod).
func (podStrategy) Fields(obj runtime.Object) fields.Set {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	set := objectMetaFields(&pod.ObjectMeta, true)
	set["spec.nodeName"] = pod.Spec.NodeName
	set["spec.restartPolicy"] = string(pod.Spec.RestartPolicy)
	set["spec.schedulerName"] = pod.Spec.SchedulerName
	set["spec.serviceAccountName"] = pod.Spec.ServiceAccountName
	set["spec.hostNetwork"] = strconv.FormatBool(pod.Spec.HostNetwork)
	set["status.phase"] = string(pod.Status.Phase)
	set["status.podIP"] = podIP(pod)
	set["status.nominatedNodeName"] = pod.Status.NominatedNodeName
	return set
}

// podIP returns the pod's primary IP, from podIPs or, for objects written
// before the two were kept in step, podIP.
func podIP(pod *corev1.Pod) string {
	if len(pod.Status.PodIPs) > 0 {
		return pod.Status.PodIPs[0].IP
	}
	return pod.Status.PodIP
}

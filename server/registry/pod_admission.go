package registry

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// This file holds what Kubernetes' admission plugins that every cluster
// enables add to pods: Priority and DefaultTolerationSeconds. kedge has no
// admission chain, so the pod strategy applies them.

// DefaultTolerationSeconds is how long a pod stays bound to a node that is
// not ready or unreachable before it is evicted, unless it says otherwise
// (kube-apiserver's --default-not-ready-toleration-seconds and
// --default-unreachable-toleration-seconds).
const DefaultTolerationSeconds int64 = 300

// admitDefaultTolerations adds the not-ready and unreachable NoExecute
// tolerations a pod lacks, as the DefaultTolerationSeconds plugin does on
// create and update. A toleration with an empty key or effect already
// covers them.
func admitDefaultTolerations(pod *corev1.Pod) {
	notReady, unreachable := false, false
	for _, t := range pod.Spec.Tolerations {
		noExecute := t.Effect == corev1.TaintEffectNoExecute || t.Effect == ""
		if noExecute && (t.Key == corev1.TaintNodeNotReady || t.Key == "") {
			notReady = true
		}
		if noExecute && (t.Key == corev1.TaintNodeUnreachable || t.Key == "") {
			unreachable = true
		}
	}
	for _, missing := range []struct {
		key  string
		need bool
	}{{corev1.TaintNodeNotReady, !notReady}, {corev1.TaintNodeUnreachable, !unreachable}} {
		if !missing.need {
			continue
		}
		pod.Spec.Tolerations = append(pod.Spec.Tolerations, corev1.Toleration{
			Key:               missing.key,
			Operator:          corev1.TolerationOpExists,
			Effect:            corev1.TaintEffectNoExecute,
			TolerationSeconds: ptrTo(DefaultTolerationSeconds),
		})
	}
}

// priorityForClass returns the value of a PriorityClass. kedge serves no
// PriorityClass objects, so only the two every cluster has exist, and no
// class is the global default (a pod without a class gets priority 0).
func priorityForClass(name string) (int32, bool) {
	switch name {
	case "":
		return 0, true
	case "system-cluster-critical":
		return 2000000000, true
	case "system-node-critical":
		return 2000001000, true
	}
	return 0, false
}

// admitPriority fills spec.priority and spec.preemptionPolicy from the
// pod's priority class on create, and keeps the old values on update when a
// client omits them, as the Priority plugin does. A value the client gave
// is left for validatePriority to check.
func admitPriority(pod, old *corev1.Pod) {
	if old != nil {
		if pod.Spec.Priority == nil {
			pod.Spec.Priority = old.Spec.Priority
		}
		if pod.Spec.PreemptionPolicy == nil {
			pod.Spec.PreemptionPolicy = old.Spec.PreemptionPolicy
		}
		return
	}
	value, ok := priorityForClass(pod.Spec.PriorityClassName)
	if !ok {
		return
	}
	if pod.Spec.Priority == nil {
		pod.Spec.Priority = ptrTo(value)
	}
	if pod.Spec.PreemptionPolicy == nil {
		pod.Spec.PreemptionPolicy = ptrTo(corev1.PreemptLowerPriority)
	}
}

// validatePriority reports what the Priority plugin rejects on create: an
// unknown class, and a priority or preemption policy that differs from the
// class's. Kubernetes answers these with 403 Forbidden; kedge reports them as
// field errors (422) since it has no admission stage.
func validatePriority(spec *corev1.PodSpec) field.ErrorList {
	fldPath := field.NewPath("spec")
	value, ok := priorityForClass(spec.PriorityClassName)
	if !ok {
		return field.ErrorList{field.NotFound(fldPath.Child("priorityClassName"), spec.PriorityClassName)}
	}
	var errs field.ErrorList
	if spec.Priority != nil && *spec.Priority != value {
		errs = append(errs, field.Forbidden(fldPath.Child("priority"), fmt.Sprintf(
			"the integer value of priority (%d) must not be provided in pod spec; priority admission controller computed %d from the given PriorityClass name",
			*spec.Priority, value)))
	}
	if spec.PreemptionPolicy != nil && *spec.PreemptionPolicy != corev1.PreemptLowerPriority {
		errs = append(errs, field.Forbidden(fldPath.Child("preemptionPolicy"), fmt.Sprintf(
			"the string value of PreemptionPolicy (%s) must not be provided in pod spec; priority admission controller computed %s from the given PriorityClass name",
			*spec.PreemptionPolicy, corev1.PreemptLowerPriority)))
	}
	return errs
}

package registry

import (
	"fmt"
	"math"
	"net"
	"reflect"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validatePodCreate is the part of Kubernetes' ValidatePodCreate kedge
// enforces: object metadata, the pod spec (containers, volumes, policies,
// tolerations, DNS) and what the Priority admission plugin checks.
func validatePodCreate(pod *corev1.Pod) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(&pod.ObjectMeta, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	specPath := field.NewPath("spec")
	errs = append(errs, validatePodSpec(&pod.Spec, specPath)...)
	if len(pod.Spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(specPath.Child("ephemeralContainers"), "cannot be set on create"))
	}
	errs = append(errs, validatePriority(&pod.Spec)...)
	return errs
}

// validatePodSpec checks a pod spec as Kubernetes' ValidatePodSpec does, for
// the fields kedge acts on.
func validatePodSpec(spec *corev1.PodSpec, fldPath *field.Path) field.ErrorList {
	volumes, errs := validateVolumes(spec.Volumes, fldPath.Child("volumes"))
	errs = append(errs, validateContainers(spec.Containers, volumes, fldPath.Child("containers"))...)
	errs = append(errs, validateInitContainers(spec.InitContainers, spec.Containers, volumes, fldPath.Child("initContainers"))...)
	errs = append(errs, validateUniqueHostPorts(spec.Containers, fldPath.Child("containers"))...)
	errs = append(errs, validateRestartPolicy(spec.RestartPolicy, fldPath.Child("restartPolicy"))...)
	errs = append(errs, validateDNSPolicy(spec.DNSPolicy, fldPath.Child("dnsPolicy"))...)
	errs = append(errs, validateDNSConfig(spec.DNSConfig, spec.DNSPolicy, fldPath.Child("dnsConfig"))...)
	errs = append(errs, metav1validation.ValidateLabels(spec.NodeSelector, fldPath.Child("nodeSelector"))...)
	errs = append(errs, validateTolerations(spec.Tolerations, fldPath.Child("tolerations"))...)
	if spec.ServiceAccountName != "" {
		errs = append(errs, validateDNS1123Subdomain(spec.ServiceAccountName, fldPath.Child("serviceAccountName"))...)
	}
	if spec.NodeName != "" {
		errs = append(errs, validateDNS1123Subdomain(spec.NodeName, fldPath.Child("nodeName"))...)
	}
	if spec.SchedulerName != "" {
		errs = append(errs, validateDNS1123Subdomain(spec.SchedulerName, fldPath.Child("schedulerName"))...)
	}
	if spec.Hostname != "" {
		errs = append(errs, validateDNS1123Label(spec.Hostname, fldPath.Child("hostname"))...)
	}
	if spec.Subdomain != "" {
		errs = append(errs, validateDNS1123Label(spec.Subdomain, fldPath.Child("subdomain"))...)
	}
	if spec.ActiveDeadlineSeconds != nil {
		if v := *spec.ActiveDeadlineSeconds; v < 1 || v > math.MaxInt32 {
			errs = append(errs, field.Invalid(fldPath.Child("activeDeadlineSeconds"), v, validation.InclusiveRangeError(1, math.MaxInt32)))
		}
	}
	// Kubernetes only warns about a negative grace period and treats it as
	// 1; kedge rejects it, as a negative number of seconds is a mistake.
	if spec.TerminationGracePeriodSeconds != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(*spec.TerminationGracePeriodSeconds, fldPath.Child("terminationGracePeriodSeconds"))...)
	}
	for i, g := range spec.ReadinessGates {
		errs = append(errs, validateQualifiedName(string(g.ConditionType), fldPath.Child("readinessGates").Index(i).Child("conditionType"))...)
	}
	return errs
}

// validateRestartPolicy checks the pod's restartPolicy enum.
func validateRestartPolicy(p corev1.RestartPolicy, fldPath *field.Path) field.ErrorList {
	switch p {
	case corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever:
		return nil
	case "":
		return field.ErrorList{field.Required(fldPath, "")}
	}
	return field.ErrorList{field.NotSupported(fldPath, p, []corev1.RestartPolicy{
		corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever})}
}

// validateDNSPolicy checks the pod's dnsPolicy enum.
func validateDNSPolicy(p corev1.DNSPolicy, fldPath *field.Path) field.ErrorList {
	switch p {
	case corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet, corev1.DNSDefault, corev1.DNSNone:
		return nil
	case "":
		return field.ErrorList{field.Required(fldPath, "")}
	}
	return field.ErrorList{field.NotSupported(fldPath, p, []corev1.DNSPolicy{
		corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet, corev1.DNSDefault, corev1.DNSNone})}
}

// validateDNSConfig checks dnsConfig: required with dnsPolicy None, at most
// 3 nameservers given as IPs and at most 32 search domains.
func validateDNSConfig(cfg *corev1.PodDNSConfig, policy corev1.DNSPolicy, fldPath *field.Path) field.ErrorList {
	if policy == corev1.DNSNone {
		if cfg == nil {
			return field.ErrorList{field.Required(fldPath, fmt.Sprintf("must provide `dnsConfig` when `dnsPolicy` is %s", corev1.DNSNone))}
		}
		if len(cfg.Nameservers) == 0 {
			return field.ErrorList{field.Required(fldPath.Child("nameservers"), fmt.Sprintf("must provide at least one DNS nameserver when `dnsPolicy` is %s", corev1.DNSNone))}
		}
	}
	if cfg == nil {
		return nil
	}
	var errs field.ErrorList
	if len(cfg.Nameservers) > 3 {
		errs = append(errs, field.Invalid(fldPath.Child("nameservers"), cfg.Nameservers, "must not have more than 3 nameservers"))
	}
	for i, ns := range cfg.Nameservers {
		errs = append(errs, validation.IsValidIP(fldPath.Child("nameservers").Index(i), ns)...)
	}
	if len(cfg.Searches) > 32 {
		errs = append(errs, field.Invalid(fldPath.Child("searches"), cfg.Searches, "must not have more than 32 search paths"))
	}
	return errs
}

// validateTolerations checks each toleration as Kubernetes' ValidateTolerations.
func validateTolerations(tolerations []corev1.Toleration, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range tolerations {
		idxPath := fldPath.Index(i)
		if t.Key != "" {
			errs = append(errs, metav1validation.ValidateLabelName(t.Key, idxPath.Child("key"))...)
		}
		if t.Key == "" && t.Operator != corev1.TolerationOpExists {
			errs = append(errs, field.Invalid(idxPath.Child("operator"), t.Operator,
				"operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
		}
		if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
			errs = append(errs, field.Invalid(idxPath.Child("effect"), t.Effect,
				"effect must be 'NoExecute' when `tolerationSeconds` is set"))
		}
		switch t.Operator {
		case corev1.TolerationOpEqual, "":
			if msgs := validation.IsValidLabelValue(t.Value); len(msgs) != 0 {
				errs = append(errs, field.Invalid(idxPath.Child("operator"), t.Value, strings.Join(msgs, ";")))
			}
		case corev1.TolerationOpExists:
			if t.Value != "" {
				errs = append(errs, field.Invalid(idxPath.Child("operator"), t, "value must be empty when `operator` is 'Exists'"))
			}
		default:
			errs = append(errs, field.NotSupported(idxPath.Child("operator"), t.Operator,
				[]corev1.TolerationOperator{corev1.TolerationOpEqual, corev1.TolerationOpExists}))
		}
		if t.Effect != "" {
			errs = append(errs, validateTaintEffect(t.Effect, idxPath.Child("effect"))...)
		}
	}
	return errs
}

// validateTaintEffect checks a taint or toleration effect enum.
func validateTaintEffect(e corev1.TaintEffect, fldPath *field.Path) field.ErrorList {
	switch e {
	case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		return nil
	}
	return field.ErrorList{field.NotSupported(fldPath, e, []corev1.TaintEffect{
		corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute})}
}

// podUpdatableFields is the list Kubernetes' "Forbidden" message names.
const podUpdatableFields = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`," +
	"`spec.tolerations` (only additions to existing tolerations)," +
	"`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"

// validatePodUpdate is Kubernetes' ValidatePodUpdate, plus the checks of
// ValidatePodStatusUpdate (both paths of kedge's API share it; on a main
// update the status is the old one and on a status update the spec is).
// The spec is immutable except container images, activeDeadlineSeconds
// (set, or lowered), tolerations (additions, and changes of
// tolerationSeconds), scheduling gates (removals) and a negative grace
// period raised to 1.
func validatePodUpdate(pod, old *corev1.Pod) field.ErrorList {
	errs := apivalidation.ValidateObjectMetaUpdate(&pod.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	errs = append(errs, apivalidation.ValidateObjectMeta(&pod.ObjectMeta, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))...)
	specPath := field.NewPath("spec")
	errs = append(errs, validatePodSpec(&pod.Spec, specPath)...)

	for _, cs := range []struct {
		name     string
		new, old []corev1.Container
	}{{"containers", pod.Spec.Containers, old.Spec.Containers}, {"initContainers", pod.Spec.InitContainers, old.Spec.InitContainers}} {
		if len(cs.new) != len(cs.old) {
			// Kubernetes stops here: the munged comparison below would index
			// past the shorter list.
			return append(errs, field.Forbidden(specPath.Child(cs.name), "pod updates may not add or remove containers"))
		}
		for i, c := range cs.new {
			if strings.TrimSpace(c.Image) != c.Image {
				errs = append(errs, field.Invalid(specPath.Child(cs.name).Index(i).Child("image"), c.Image, "must not have leading or trailing whitespace"))
			}
		}
	}

	if ads := pod.Spec.ActiveDeadlineSeconds; ads != nil {
		if old.Spec.ActiveDeadlineSeconds != nil && *old.Spec.ActiveDeadlineSeconds < *ads {
			errs = append(errs, field.Invalid(specPath.Child("activeDeadlineSeconds"), *ads, "must be less than or equal to previous value"))
		}
	} else if old.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Invalid(specPath.Child("activeDeadlineSeconds"), pod.Spec.ActiveDeadlineSeconds, "must not update from a positive integer to nil value"))
	}
	errs = append(errs, validateOnlyAddedTolerations(pod.Spec.Tolerations, old.Spec.Tolerations, specPath.Child("tolerations"))...)
	errs = append(errs, validateOnlyRemovedSchedulingGates(pod.Spec.SchedulingGates, old.Spec.SchedulingGates, specPath.Child("schedulingGates"))...)

	if changed := changedSpecFields(mungePodSpec(pod, old), &old.Spec); len(changed) > 0 {
		errs = append(errs, field.Forbidden(specPath, fmt.Sprintf("pod updates may not change fields other than %s\n  changed: %s",
			podUpdatableFields, strings.Join(changed, ", "))))
	}
	errs = append(errs, validatePodStatusUpdate(pod, old)...)
	return errs
}

// mungePodSpec returns the new spec with every field that may change set
// back to its old value, so that what remains different is forbidden.
func mungePodSpec(pod, old *corev1.Pod) *corev1.PodSpec {
	m := pod.Spec.DeepCopy()
	for i := range m.Containers {
		m.Containers[i].Image = old.Spec.Containers[i].Image
	}
	for i := range m.InitContainers {
		m.InitContainers[i].Image = old.Spec.InitContainers[i].Image
	}
	m.ActiveDeadlineSeconds = old.Spec.ActiveDeadlineSeconds
	m.Tolerations = old.Spec.Tolerations
	m.SchedulingGates = old.Spec.SchedulingGates
	if g := old.Spec.TerminationGracePeriodSeconds; g != nil && *g < 0 &&
		m.TerminationGracePeriodSeconds != nil && *m.TerminationGracePeriodSeconds == 1 {
		m.TerminationGracePeriodSeconds = g
	}
	return m
}

// changedSpecFields names the PodSpec fields (by JSON name, and per
// container for the container lists) that differ, so the error tells the
// user what to undo. Kubernetes prints a full diff instead.
func changedSpecFields(a, b *corev1.PodSpec) []string {
	var changed []string
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	t := va.Type()
	for i := 0; i < t.NumField(); i++ {
		name := jsonName(t.Field(i))
		fa, fb := va.Field(i).Interface(), vb.Field(i).Interface()
		if apiequality.Semantic.DeepEqual(fa, fb) {
			continue
		}
		if ca, ok := fa.([]corev1.Container); ok {
			cb := fb.([]corev1.Container)
			if len(ca) == len(cb) {
				for j := range ca {
					changed = append(changed, containerChanges(fmt.Sprintf("spec.%s[%d]", name, j), &ca[j], &cb[j])...)
				}
				continue
			}
		}
		changed = append(changed, "spec."+name)
	}
	return changed
}

// containerChanges names the fields of one container that differ.
func containerChanges(prefix string, a, b *corev1.Container) []string {
	var changed []string
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	t := va.Type()
	for i := 0; i < t.NumField(); i++ {
		if !apiequality.Semantic.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			changed = append(changed, prefix+"."+jsonName(t.Field(i)))
		}
	}
	return changed
}

// jsonName returns a struct field's JSON name.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

// validateOnlyAddedTolerations lets an update add tolerations and change
// tolerationSeconds, but not remove or otherwise modify existing ones.
func validateOnlyAddedTolerations(tolerations, old []corev1.Toleration, fldPath *field.Path) field.ErrorList {
	for _, o := range old {
		found := false
		for _, n := range tolerations {
			c := o
			c.TolerationSeconds = n.TolerationSeconds
			if reflect.DeepEqual(c, n) {
				found = true
				break
			}
		}
		if !found {
			return field.ErrorList{field.Forbidden(fldPath, "existing toleration can not be modified except its tolerationSeconds")}
		}
	}
	return nil
}

// validateOnlyRemovedSchedulingGates lets an update remove scheduling
// gates, never add them.
func validateOnlyRemovedSchedulingGates(gates, old []corev1.PodSchedulingGate, fldPath *field.Path) field.ErrorList {
	had := map[string]bool{}
	for _, g := range old {
		had[g.Name] = true
	}
	for _, g := range gates {
		if !had[g.Name] {
			return field.ErrorList{field.Forbidden(fldPath, "only deletion is allowed, but found new scheduling gate '"+g.Name+"'")}
		}
	}
	return nil
}

// validatePodStatusUpdate checks what Kubernetes' ValidatePodStatusUpdate
// checks of the status itself: the nominated node's name, the pod's IPs,
// and that a container which must not restart does not come back to life.
func validatePodStatusUpdate(pod, old *corev1.Pod) field.ErrorList {
	var errs field.ErrorList
	statusPath := field.NewPath("status")
	if n := pod.Status.NominatedNodeName; n != "" && n != old.Status.NominatedNodeName {
		errs = append(errs, validateDNS1123Subdomain(n, statusPath.Child("nominatedNodeName"))...)
	}
	errs = append(errs, validateIPList(podIPStrings(pod.Status.PodIPs), statusPath.Child("podIPs"))...)
	errs = append(errs, validateIPList(hostIPStrings(pod.Status.HostIPs), statusPath.Child("hostIPs"))...)
	errs = append(errs, validateContainerStateTransition(pod.Status.ContainerStatuses, old.Status.ContainerStatuses, statusPath.Child("containerStatuses"), old.Spec.RestartPolicy, nil)...)
	sidecars := map[string]bool{}
	for i := range old.Spec.InitContainers {
		if isSidecar(&old.Spec.InitContainers[i]) {
			sidecars[old.Spec.InitContainers[i].Name] = true
		}
	}
	errs = append(errs, validateContainerStateTransition(pod.Status.InitContainerStatuses, old.Status.InitContainerStatuses, statusPath.Child("initContainerStatuses"), old.Spec.RestartPolicy, sidecars)...)
	return errs
}

// validateIPList checks a pod's or host's IPs: each valid, at most one per
// family.
func validateIPList(ips []string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	families := map[bool]int{}
	for i, ip := range ips {
		if e := validation.IsValidIP(fldPath.Index(i).Child("ip"), ip); len(e) > 0 {
			errs = append(errs, e...)
			continue
		}
		families[net.ParseIP(ip).To4() != nil]++
	}
	if len(errs) == 0 && (len(ips) > 2 || families[true] > 1 || families[false] > 1) {
		errs = append(errs, field.Invalid(fldPath, ips, "may specify no more than one IP for each IP family"))
	}
	return errs
}

func podIPStrings(ips []corev1.PodIP) []string {
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, ip.IP)
	}
	return out
}

func hostIPStrings(ips []corev1.HostIP) []string {
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, ip.IP)
	}
	return out
}

// validateContainerStateTransition forbids a container that terminated
// from becoming non-terminated again when the pod's restart policy says it
// is not restarted (Never; or OnFailure after a successful exit). Sidecars
// (named in restartable) always restart.
func validateContainerStateTransition(statuses, old []corev1.ContainerStatus, fldPath *field.Path, policy corev1.RestartPolicy, restartable map[string]bool) field.ErrorList {
	if policy == corev1.RestartPolicyAlways {
		return nil
	}
	var errs field.ErrorList
	for i, s := range statuses {
		if s.State.Terminated != nil || restartable[s.Name] {
			continue
		}
		for _, o := range old {
			if o.Name != s.Name || o.State.Terminated == nil {
				continue
			}
			if policy == corev1.RestartPolicyNever || o.State.Terminated.ExitCode == 0 {
				errs = append(errs, field.Forbidden(fldPath.Index(i).Child("state"), "may not be transitioned to non-terminated state"))
			}
		}
	}
	return errs
}

// sortedKeys returns a map's keys in order, for deterministic messages.
func sortedKeys[K ~string, V any](m map[K]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	return keys
}

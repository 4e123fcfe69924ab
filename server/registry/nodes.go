package registry

import (
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// nodeStrategy holds the decisions for core/v1 nodes
// (pkg/registry/core/node/strategy.go). Nodes are cluster-scoped.
type nodeStrategy struct {
	now func() time.Time
}

var _ Strategy = nodeStrategy{}

func nodeResource(now func() time.Time) Resource {
	return Resource{
		Version:           "v1",
		Kind:              "Node",
		Resource:          "nodes",
		SingularName:      "node",
		ShortNames:        []string{"no"},
		Verbs:             allVerbs(),
		Subresources:      []string{"status"},
		New:               func() runtime.Object { return &corev1.Node{} },
		UnmarshalProtobuf: func(o runtime.Object, b []byte) error { return o.(*corev1.Node).Unmarshal(b) },
		NewList:           func() runtime.Object { return &corev1.NodeList{} },
		Strategy:          nodeStrategy{now: now},
	}
}

// PrepareForCreate applies the node defaults. Unlike pods, the status is
// kept: an agent registers its node with its capacity and addresses.
func (nodeStrategy) PrepareForCreate(obj runtime.Object) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	node.Namespace = ""
	defaultNode(node)
}

// PrepareForUpdate keeps the old status and applies defaults.
func (nodeStrategy) PrepareForUpdate(obj, old runtime.Object) {
	node, ok1 := obj.(*corev1.Node)
	oldNode, ok2 := old.(*corev1.Node)
	if !ok1 || !ok2 {
		return
	}
	node.Namespace = ""
	node.Status = oldNode.Status
	defaultNode(node)
}

// PrepareForStatusUpdate keeps the old spec and metadata.
func (nodeStrategy) PrepareForStatusUpdate(obj, old runtime.Object) {
	node, ok1 := obj.(*corev1.Node)
	oldNode, ok2 := old.(*corev1.Node)
	if !ok1 || !ok2 {
		return
	}
	node.Spec = oldNode.Spec
	metav1.ResetObjectMetaForStatus(&node.ObjectMeta, &oldNode.ObjectMeta)
	defaultNode(node)
}

// defaultNode is SetDefaults_NodeStatus (allocatable defaults to capacity)
// plus keeping spec.podCIDR and spec.podCIDRs in step, as Kubernetes'
// conversion does.
func defaultNode(node *corev1.Node) {
	if node.Status.Allocatable == nil && node.Status.Capacity != nil {
		node.Status.Allocatable = make(corev1.ResourceList, len(node.Status.Capacity))
		for name, q := range node.Status.Capacity {
			node.Status.Allocatable[name] = q.DeepCopy()
		}
	}
	if len(node.Spec.PodCIDRs) == 0 && node.Spec.PodCIDR != "" {
		node.Spec.PodCIDRs = []string{node.Spec.PodCIDR}
	}
	if len(node.Spec.PodCIDRs) > 0 {
		node.Spec.PodCIDR = node.Spec.PodCIDRs[0]
	}
}

// ValidateCreate validates a new node: name a DNS-1123 subdomain, taints,
// pod CIDRs.
func (nodeStrategy) ValidateCreate(obj runtime.Object) field.ErrorList {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return wrongType("*v1.Node", obj)
	}
	return validateNode(node)
}

// ValidateUpdate validates an update of a node or its status: the node
// must still be valid, and pod CIDRs and provider ID, once set, are fixed.
func (nodeStrategy) ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return wrongType("*v1.Node", obj)
	}
	oldNode, ok := old.(*corev1.Node)
	if !ok {
		return wrongType("*v1.Node", old)
	}
	errs := apivalidation.ValidateObjectMetaUpdate(&node.ObjectMeta, &oldNode.ObjectMeta, field.NewPath("metadata"))
	errs = append(errs, validateNode(node)...)
	if len(oldNode.Spec.PodCIDRs) > 0 && strings.Join(oldNode.Spec.PodCIDRs, ",") != strings.Join(node.Spec.PodCIDRs, ",") {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "podCIDRs"), "node updates may not change podCIDR except from \"\" to valid"))
	}
	if oldNode.Spec.ProviderID != "" && oldNode.Spec.ProviderID != node.Spec.ProviderID {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "providerID"), "node updates may not change providerID except from \"\" to valid"))
	}
	return errs
}

// validateNode is the part of Kubernetes' ValidateNode kedge enforces.
func validateNode(node *corev1.Node) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(&node.ObjectMeta, false, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	specPath := field.NewPath("spec")
	errs = append(errs, validateNodeTaints(node.Spec.Taints, specPath.Child("taints"))...)
	cidrsPath := specPath.Child("podCIDRs")
	for i, cidr := range node.Spec.PodCIDRs {
		errs = append(errs, validation.IsValidCIDR(cidrsPath.Index(i), cidr)...)
	}
	if len(node.Spec.PodCIDRs) > 2 {
		errs = append(errs, field.Invalid(cidrsPath, node.Spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
	}
	return errs
}

// validateNodeTaints checks taint keys, values and effects, and that taints
// are unique by key and effect.
func validateNodeTaints(taints []corev1.Taint, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[corev1.TaintEffect]map[string]bool{}
	for i, t := range taints {
		idxPath := fldPath.Index(i)
		errs = append(errs, metav1validation.ValidateLabelName(t.Key, idxPath.Child("key"))...)
		if msgs := validation.IsValidLabelValue(t.Value); len(msgs) != 0 {
			errs = append(errs, field.Invalid(idxPath.Child("value"), t.Value, strings.Join(msgs, ";")))
		}
		if t.Effect == "" {
			errs = append(errs, field.Required(idxPath.Child("effect"), ""))
		} else {
			errs = append(errs, validateTaintEffect(t.Effect, idxPath.Child("effect"))...)
		}
		if seen[t.Effect][t.Key] {
			dup := field.Duplicate(idxPath, t)
			dup.Detail = "taints must be unique by key and effect pair"
			errs = append(errs, dup)
			continue
		}
		if seen[t.Effect] == nil {
			seen[t.Effect] = map[string]bool{}
		}
		seen[t.Effect][t.Key] = true
	}
	return errs
}

// Fields returns metadata.name and spec.unschedulable, the node fields
// Kubernetes lets a fieldSelector match.
func (nodeStrategy) Fields(obj runtime.Object) fields.Set {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return nil
	}
	set := objectMetaFields(&node.ObjectMeta, false)
	set["spec.unschedulable"] = strconv.FormatBool(node.Spec.Unschedulable)
	return set
}

// TableColumns returns kubectl's node columns: NAME STATUS ROLES AGE
// VERSION, and with -o wide INTERNAL-IP EXTERNAL-IP OS-IMAGE KERNEL-VERSION
// CONTAINER-RUNTIME.
func (nodeStrategy) TableColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		{Name: "Status", Type: "string", Description: "The status of the node"},
		{Name: "Roles", Type: "string", Description: "The roles of the node"},
		ageColumn(),
		{Name: "Version", Type: "string", Description: corev1.NodeSystemInfo{}.SwaggerDoc()["kubeletVersion"]},
		{Name: "Internal-IP", Type: "string", Priority: 1, Description: corev1.NodeStatus{}.SwaggerDoc()["addresses"]},
		{Name: "External-IP", Type: "string", Priority: 1, Description: corev1.NodeStatus{}.SwaggerDoc()["addresses"]},
		{Name: "OS-Image", Type: "string", Priority: 1, Description: corev1.NodeSystemInfo{}.SwaggerDoc()["osImage"]},
		{Name: "Kernel-Version", Type: "string", Priority: 1, Description: corev1.NodeSystemInfo{}.SwaggerDoc()["kernelVersion"]},
		{Name: "Container-Runtime", Type: "string", Priority: 1, Description: corev1.NodeSystemInfo{}.SwaggerDoc()["containerRuntimeVersion"]},
	}
}

// TableRow returns a node's cells as Kubernetes' printNode does.
func (s nodeStrategy) TableRow(obj runtime.Object) []interface{} {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return nil
	}
	info := node.Status.NodeInfo
	return []interface{}{
		node.Name,
		NodeStatusString(node),
		orNone(strings.Join(NodeRoles(node), ",")),
		HumanAge(node.CreationTimestamp, s.now()),
		info.KubeletVersion,
		orNone(nodeAddress(node, corev1.NodeInternalIP)),
		orNone(nodeAddress(node, corev1.NodeExternalIP)),
		orUnknown(info.OSImage),
		orUnknown(info.KernelVersion),
		orUnknown(info.ContainerRuntimeVersion),
	}
}

// NodeStatusString renders a node's STATUS column: "Ready", "NotReady" or
// "Unknown" (no Ready condition), with ",SchedulingDisabled" when cordoned.
func NodeStatusString(node *corev1.Node) string {
	status := "Unknown"
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				status = string(corev1.NodeReady)
			} else {
				status = "Not" + string(corev1.NodeReady)
			}
		}
	}
	if node.Spec.Unschedulable {
		status += ",SchedulingDisabled"
	}
	return status
}

// NodeRoles returns a node's roles, sorted: the <role> of each
// node-role.kubernetes.io/<role> label and the value of a
// kubernetes.io/role label.
func NodeRoles(node *corev1.Node) []string {
	set := map[string]bool{}
	for k, v := range node.Labels {
		switch {
		case strings.HasPrefix(k, "node-role.kubernetes.io/"):
			if role := strings.TrimPrefix(k, "node-role.kubernetes.io/"); role != "" {
				set[role] = true
			}
		case k == "kubernetes.io/role" && v != "":
			set[v] = true
		}
	}
	roles := make([]string, 0, len(set))
	for r := range set {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	return roles
}

// nodeAddress returns the node's first address of the type.
func nodeAddress(node *corev1.Node, t corev1.NodeAddressType) string {
	for _, a := range node.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return ""
}

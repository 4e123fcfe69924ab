package registry

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// namespaceStrategy holds the decisions for core/v1 namespaces
// (pkg/registry/core/namespace/strategy.go). Namespaces are cluster-scoped.
type namespaceStrategy struct {
	now func() time.Time
}

var _ Strategy = namespaceStrategy{}

func namespaceResource(now func() time.Time) Resource {
	return Resource{
		Version:      "v1",
		Kind:         "Namespace",
		Resource:     "namespaces",
		SingularName: "namespace",
		ShortNames:   []string{"ns"},
		// Kubernetes serves no deletecollection on namespaces.
		Verbs:             []string{"create", "delete", "get", "list", "patch", "update", "watch"},
		Subresources:      []string{"status", "finalize"},
		New:               func() runtime.Object { return &corev1.Namespace{} },
		UnmarshalProtobuf: func(o runtime.Object, b []byte) error { return o.(*corev1.Namespace).Unmarshal(b) },
		NewList:           func() runtime.Object { return &corev1.NamespaceList{} },
		Strategy:          namespaceStrategy{now: now},
	}
}

// PrepareForCreate sets status.phase Active, adds the "kubernetes"
// finalizer (which the namespace controller removes once the namespace's
// contents are deleted) and the kubernetes.io/metadata.name label.
func (namespaceStrategy) PrepareForCreate(obj runtime.Object) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return
	}
	ns.Namespace = ""
	ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
	has := false
	for _, f := range ns.Spec.Finalizers {
		if f == corev1.FinalizerKubernetes {
			has = true
			break
		}
	}
	if !has {
		ns.Spec.Finalizers = append(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
	}
	labelNamespaceName(ns)
}

// PrepareForUpdate keeps the old finalizers (changed only through
// finalize) and status, and enforces the name label.
func (namespaceStrategy) PrepareForUpdate(obj, old runtime.Object) {
	ns, ok1 := obj.(*corev1.Namespace)
	oldNS, ok2 := old.(*corev1.Namespace)
	if !ok1 || !ok2 {
		return
	}
	ns.Namespace = ""
	ns.Spec.Finalizers = oldNS.Spec.Finalizers
	ns.Status = oldNS.Status
	labelNamespaceName(ns)
}

// PrepareForStatusUpdate keeps the old spec and metadata.
func (namespaceStrategy) PrepareForStatusUpdate(obj, old runtime.Object) {
	ns, ok1 := obj.(*corev1.Namespace)
	oldNS, ok2 := old.(*corev1.Namespace)
	if !ok1 || !ok2 {
		return
	}
	ns.Spec = oldNS.Spec
	metav1.ResetObjectMetaForStatus(&ns.ObjectMeta, &oldNS.ObjectMeta)
}

// PrepareNamespaceForFinalize is the decision for a write to the finalize
// subresource, which the Strategy interface has no method for: only
// spec.finalizers is taken from the new object; metadata and status stay
// as they were. Validate the result with the strategy's ValidateUpdate.
func PrepareNamespaceForFinalize(ns, old *corev1.Namespace) {
	finalizers := ns.Spec.Finalizers
	rv := ns.ResourceVersion
	*ns = *old.DeepCopy()
	ns.Spec.Finalizers = finalizers
	ns.ResourceVersion = rv
}

// labelNamespaceName sets kubernetes.io/metadata.name to the namespace's
// name, as Kubernetes does on every write so selectors can match it.
func labelNamespaceName(ns *corev1.Namespace) {
	if ns.Name == "" {
		return
	}
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	ns.Labels[corev1.LabelMetadataName] = ns.Name
}

// ValidateCreate validates a new namespace: name a DNS-1123 label,
// finalizers either "kubernetes" or domain-qualified.
func (namespaceStrategy) ValidateCreate(obj runtime.Object) field.ErrorList {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return wrongType("*v1.Namespace", obj)
	}
	return validateNamespace(ns)
}

// ValidateUpdate validates an update of a namespace, its status or its
// finalizers. The phase must be Active until deletion starts and
// Terminating after.
func (namespaceStrategy) ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return wrongType("*v1.Namespace", obj)
	}
	oldNS, ok := old.(*corev1.Namespace)
	if !ok {
		return wrongType("*v1.Namespace", old)
	}
	errs := apivalidation.ValidateObjectMetaUpdate(&ns.ObjectMeta, &oldNS.ObjectMeta, field.NewPath("metadata"))
	errs = append(errs, validateNamespace(ns)...)
	phasePath := field.NewPath("status", "Phase")
	if oldNS.DeletionTimestamp.IsZero() {
		if ns.Status.Phase != corev1.NamespaceActive {
			errs = append(errs, field.Invalid(phasePath, ns.Status.Phase, "may only be 'Active' if `deletionTimestamp` is empty"))
		}
	} else if ns.Status.Phase != corev1.NamespaceTerminating {
		errs = append(errs, field.Invalid(phasePath, ns.Status.Phase, "may only be 'Terminating' if `deletionTimestamp` is not empty"))
	}
	return errs
}

// validateNamespace is the part of Kubernetes' ValidateNamespace kedge
// enforces.
func validateNamespace(ns *corev1.Namespace) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(&ns.ObjectMeta, false, apivalidation.ValidateNamespaceName, field.NewPath("metadata"))
	for i, f := range ns.Spec.Finalizers {
		p := field.NewPath("spec", "finalizers").Index(i)
		name := string(f)
		errs = append(errs, apivalidation.ValidateFinalizerName(name, p)...)
		if !strings.Contains(name, "/") && f != corev1.FinalizerKubernetes {
			errs = append(errs, field.Invalid(p, name, "name is neither a standard finalizer name nor is it fully qualified"))
		}
	}
	return errs
}

// Fields returns metadata.name, status.phase and the legacy "name" field a
// namespace fieldSelector may use.
func (namespaceStrategy) Fields(obj runtime.Object) fields.Set {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return nil
	}
	set := objectMetaFields(&ns.ObjectMeta, false)
	set["status.phase"] = string(ns.Status.Phase)
	set["name"] = ns.Name
	return set
}

// TableColumns returns kubectl's namespace columns: NAME STATUS AGE.
func (namespaceStrategy) TableColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		{Name: "Status", Type: "string", Description: "The status of the namespace"},
		ageColumn(),
	}
}

// TableRow returns a namespace's cells.
func (s namespaceStrategy) TableRow(obj runtime.Object) []interface{} {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return nil
	}
	return []interface{}{ns.Name, string(ns.Status.Phase), HumanAge(ns.CreationTimestamp, s.now())}
}

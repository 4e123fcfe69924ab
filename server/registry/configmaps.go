package registry

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// configMapStrategy holds the decisions for core/v1 config maps
// (pkg/registry/core/configmap/strategy.go). Config maps have no status and
// no defaults: they are stored as sent.
type configMapStrategy struct {
	now func() time.Time
}

var _ Strategy = configMapStrategy{}

func configMapResource(now func() time.Time) Resource {
	return Resource{
		Version:           "v1",
		Kind:              "ConfigMap",
		Resource:          "configmaps",
		SingularName:      "configmap",
		ShortNames:        []string{"cm"},
		Namespaced:        true,
		Verbs:             allVerbs(),
		New:               func() runtime.Object { return &corev1.ConfigMap{} },
		UnmarshalProtobuf: func(o runtime.Object, b []byte) error { return o.(*corev1.ConfigMap).Unmarshal(b) },
		NewList:           func() runtime.Object { return &corev1.ConfigMapList{} },
		Strategy:          configMapStrategy{now: now},
	}
}

// PrepareForCreate does nothing: Kubernetes stores config maps as sent.
func (configMapStrategy) PrepareForCreate(runtime.Object) {}

// PrepareForUpdate does nothing: every field of a mutable config map may
// change, and ValidateUpdate guards an immutable one.
func (configMapStrategy) PrepareForUpdate(runtime.Object, runtime.Object) {}

// PrepareForStatusUpdate does nothing: config maps have no status
// subresource.
func (configMapStrategy) PrepareForStatusUpdate(runtime.Object, runtime.Object) {}

// ValidateCreate validates a new config map; see validateConfigMap.
func (configMapStrategy) ValidateCreate(obj runtime.Object) field.ErrorList {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return wrongType("*v1.ConfigMap", obj)
	}
	return validateConfigMap(cm)
}

// ValidateUpdate is Kubernetes' ValidateConfigMapUpdate: once immutable is
// true it stays true, and data and binaryData stay as they are.
func (configMapStrategy) ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return wrongType("*v1.ConfigMap", obj)
	}
	oldCM, ok := old.(*corev1.ConfigMap)
	if !ok {
		return wrongType("*v1.ConfigMap", old)
	}
	errs := apivalidation.ValidateObjectMetaUpdate(&cm.ObjectMeta, &oldCM.ObjectMeta, field.NewPath("metadata"))
	if isTrue(oldCM.Immutable) {
		if !isTrue(cm.Immutable) {
			errs = append(errs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
		}
		// Semantic equality: nil and empty maps are the same content.
		if !apiequality.Semantic.DeepEqual(cm.Data, oldCM.Data) {
			errs = append(errs, field.Forbidden(field.NewPath("data"), "field is immutable when `immutable` is set"))
		}
		if !apiequality.Semantic.DeepEqual(cm.BinaryData, oldCM.BinaryData) {
			errs = append(errs, field.Forbidden(field.NewPath("binaryData"), "field is immutable when `immutable` is set"))
		}
	}
	return append(errs, validateConfigMap(cm)...)
}

// validateConfigMap is Kubernetes' ValidateConfigMap: a DNS-1123 subdomain
// name, keys of data and binaryData that are valid config keys and appear
// in only one of the two, and at most corev1.MaxSecretSize bytes of values
// in all (reported against the whole object: Kubernetes passes the empty
// path, which prints as "[]"). Keys are checked in sorted order for a stable list of causes.
func validateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(&cm.ObjectMeta, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	total := 0
	for _, key := range sortedKeys(cm.Data) {
		p := field.NewPath("data").Key(key)
		for _, msg := range validation.IsConfigMapKey(key) {
			errs = append(errs, field.Invalid(p, key, msg))
		}
		if _, dup := cm.BinaryData[key]; dup {
			errs = append(errs, field.Invalid(p, key, "duplicate of key present in binaryData"))
		}
		total += len(cm.Data[key])
	}
	for _, key := range sortedKeys(cm.BinaryData) {
		for _, msg := range validation.IsConfigMapKey(key) {
			errs = append(errs, field.Invalid(field.NewPath("binaryData").Key(key), key, msg))
		}
		total += len(cm.BinaryData[key])
	}
	if total > corev1.MaxSecretSize {
		errs = append(errs, field.TooLong(field.NewPath(""), "", corev1.MaxSecretSize))
	}
	return errs
}

// Fields returns the metadata fields, the only ones Kubernetes lets a
// config map fieldSelector match.
func (configMapStrategy) Fields(obj runtime.Object) fields.Set {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return nil
	}
	return objectMetaFields(&cm.ObjectMeta, true)
}

// TableColumns returns kubectl's config map columns: NAME DATA AGE.
func (configMapStrategy) TableColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		{Name: "Data", Type: "string", Description: corev1.ConfigMap{}.SwaggerDoc()["data"]},
		ageColumn(),
	}
}

// TableRow returns a config map's cells as Kubernetes' printConfigMap does:
// DATA counts the keys of data and binaryData together.
func (s configMapStrategy) TableRow(obj runtime.Object) []interface{} {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return nil
	}
	return []interface{}{cm.Name, int64(len(cm.Data) + len(cm.BinaryData)), HumanAge(cm.CreationTimestamp, s.now())}
}

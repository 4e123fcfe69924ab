package registry

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// HumanAge renders the time elapsed from t to now the way kubectl's AGE
// column does (Kubernetes' translateTimestampSince): "5s", "3m20s", "2d",
// "<unknown>" for a zero time and "<invalid>" for a time in the future.
func HumanAge(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// humanMicroAge is HumanAge for the MicroTime fields of events.
func humanMicroAge(t metav1.MicroTime, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// objectMetaFields returns the metadata fields every kind offers to field
// selectors (Kubernetes' generic.ObjectMetaFieldsSet).
func objectMetaFields(meta *metav1.ObjectMeta, namespaced bool) fields.Set {
	set := fields.Set{"metadata.name": meta.Name}
	if namespaced {
		set["metadata.namespace"] = meta.Namespace
	}
	return set
}

// wrongType is what the Validate methods return when the API layer hands a
// strategy an object of another kind: a wiring bug, reported rather than
// panicking inside a request.
func wrongType(want string, obj runtime.Object) field.ErrorList {
	return field.ErrorList{field.InternalError(nil, fmt.Errorf("registry: expected %s, got %T", want, obj))}
}

// validateDNS1123Label reports each way value fails to be a DNS-1123 label,
// as Kubernetes' ValidateDNS1123Label does.
func validateDNS1123Label(value string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(value) {
		errs = append(errs, field.Invalid(fldPath, value, msg))
	}
	return errs
}

// validateDNS1123Subdomain reports each way value fails to be a DNS-1123
// subdomain.
func validateDNS1123Subdomain(value string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(value) {
		errs = append(errs, field.Invalid(fldPath, value, msg))
	}
	return errs
}

// validateQualifiedName reports each way value fails to be a qualified name
// (the syntax of label keys).
func validateQualifiedName(value string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsQualifiedName(value) {
		errs = append(errs, field.Invalid(fldPath, value, msg))
	}
	return errs
}

// orNone returns s, or "<none>" when s is empty, as kubectl prints blanks.
func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// orUnknown returns s, or "<unknown>" when s is empty.
func orUnknown(s string) string {
	if s == "" {
		return "<unknown>"
	}
	return s
}

// nameColumn is the first column of most kinds' tables.
func nameColumn() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]}
}

// ageColumn is the AGE column of most kinds' tables.
func ageColumn() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: "Age", Type: "string", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]}
}

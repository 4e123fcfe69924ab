// Package registry describes each kind the API server serves: its names for
// discovery, how it is defaulted, validated and printed, and which fields a
// fieldSelector may use. It holds decisions only; the HTTP and storage
// plumbing that calls them lives in server/api.
package registry

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Resource describes one served kind (for example core/v1 pods).
type Resource struct {
	Group   string // "" for the core group
	Version string // "v1"
	Kind    string // "Pod"
	// Resource is the plural, lower-case name used in URLs ("pods").
	Resource     string
	SingularName string   // "pod"
	ShortNames   []string // ["po"]
	Categories   []string // ["all"]
	Namespaced   bool
	// Verbs as discovery lists them: create, delete, deletecollection, get,
	// list, patch, update, watch.
	Verbs []string
	// Subresources served under /<resource>/<name>/<sub>: "status", "log",
	// "binding", "finalize".
	Subresources []string
	// New returns an empty object of the kind, NewList an empty list.
	New     func() runtime.Object
	NewList func() runtime.Object
	// Strategy holds the kind's decisions.
	Strategy Strategy
}

// Strategy holds the per-kind decisions the API server makes around storage.
// Implementations are pure: no I/O, safe for concurrent use, and they only
// mutate the object they are handed.
type Strategy interface {
	// PrepareForCreate clears what a client may not set on create (for a
	// Pod: status, except what the server computes such as qosClass) and
	// applies Kubernetes' defaults.
	PrepareForCreate(obj runtime.Object)
	// PrepareForUpdate is called on a write to the main resource: it keeps
	// the old status (status is written only through the status
	// subresource) and applies defaults.
	PrepareForUpdate(obj, old runtime.Object)
	// PrepareForStatusUpdate is called on a write to the status
	// subresource: it keeps everything but status from old.
	PrepareForStatusUpdate(obj, old runtime.Object)
	// ValidateCreate returns the problems with a new object, with field paths.
	ValidateCreate(obj runtime.Object) field.ErrorList
	// ValidateUpdate returns the problems with an update, including changes
	// to immutable fields.
	ValidateUpdate(obj, old runtime.Object) field.ErrorList
	// Fields returns the values a fieldSelector can match for this object
	// (always metadata.name, and metadata.namespace for namespaced kinds).
	Fields(obj runtime.Object) fields.Set
	// TableColumns lists the column definitions of kubectl's table output.
	TableColumns() []metav1.TableColumnDefinition
	// TableRow returns the cells of one object's row, matching TableColumns.
	TableRow(obj runtime.Object) []interface{}
}

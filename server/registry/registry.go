// Package registry describes each kind the API server serves: its names for
// discovery, how it is defaulted, validated and printed, and which fields a
// fieldSelector may use. It holds decisions only; the HTTP and storage
// plumbing that calls them lives in server/api.
//
// The decisions follow Kubernetes v1.34 (the k8s.io/api version kedge is
// built on): defaulting as pkg/apis/core/v1/defaults.go plus the admission
// plugins every cluster runs (Priority, DefaultTolerationSeconds), strategies
// as pkg/registry/core/*/strategy.go, validation as
// pkg/apis/core/validation, and tables as pkg/printers/internalversion.
// Where kedge differs on purpose, the function comment says so.
package registry

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// KubernetesVersion is the Kubernetes release whose API kedge serves: the
// version of k8s.io/api its types come from. Nodes report it as their
// kubelet version, /version and the OpenAPI documents carry it.
const KubernetesVersion = "v1.34.2"

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
	// UnmarshalProtobuf decodes the kind's protobuf form (the Raw of the
	// runtime.Unknown envelope) into an object New returned. Each kind
	// names its own type's decoder: a call through an interface instead
	// would make the linker keep the protobuf decoder of every k8s.io/api
	// type (~1.3 MB of the binary).
	UnmarshalProtobuf func(obj runtime.Object, data []byte) error
	// Strategy holds the kind's decisions.
	Strategy Strategy
}

// Strategy holds the per-kind decisions the API server makes around storage.
// Implementations are pure: no I/O, safe for concurrent use, and they only
// mutate the object they are handed. Every method expects the kind's own Go
// type (*corev1.Pod for pods, ...); handed another type, the Prepare methods
// do nothing, the Validate methods return a field.InternalError, Fields
// returns nil and TableRow returns nil.
//
// Order of calls the API layer is expected to make:
//   - create: PrepareForCreate, then ValidateCreate.
//   - update of the main resource: PrepareForUpdate(new, old), then
//     ValidateUpdate(new, old).
//   - update of the status subresource: PrepareForStatusUpdate(new, old),
//     then ValidateUpdate(new, old).
//
// Defaults are applied inside PrepareForCreate and PrepareForUpdate (the
// API layer has no separate defaulting step), so a client that omits a
// defaulted field on update (a PUT of what it once sent) gets the same
// defaults again instead of an "immutable field" error.
//
// metadata.generation: the strategies own it for the kinds that have one in
// Kubernetes (pods: 1 on create, +1 whenever the spec changes). The API layer
// sets uid, creationTimestamp, resourceVersion and generated names on
// create; on update, before ValidateUpdate, it carries over from the stored
// object what Kubernetes' rest.BeforeUpdate does (uid when the client sent
// none, creationTimestamp, deletionTimestamp, deletionGracePeriodSeconds),
// since ValidateUpdate reports a changed uid or creationTimestamp as an
// immutable-field error.
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
	// subresource: it keeps everything but status from old (spec, and the
	// metadata fields metav1.ResetObjectMetaForStatus names: labels,
	// annotations, finalizers, ownerReferences, deletionTimestamp,
	// generation). resourceVersion stays as the client sent it.
	PrepareForStatusUpdate(obj, old runtime.Object)
	// ValidateCreate returns the problems with a new object, with field paths.
	ValidateCreate(obj runtime.Object) field.ErrorList
	// ValidateUpdate returns the problems with an update, including changes
	// to immutable fields. Like Kubernetes' ValidateObjectMetaUpdate it
	// requires metadata.resourceVersion on obj: for an unconditional update
	// the API layer copies the stored object's resourceVersion into obj
	// before calling it, as Kubernetes' generic store does.
	ValidateUpdate(obj, old runtime.Object) field.ErrorList
	// Fields returns the values a fieldSelector can match for this object
	// (always metadata.name, and metadata.namespace for namespaced kinds).
	Fields(obj runtime.Object) fields.Set
	// TableColumns lists the column definitions of kubectl's table output.
	// The list is complete: it includes the Name column (Type "string",
	// Format "name"), first for every kind except events, where Kubernetes
	// puts it last with priority 1. The API layer copies the columns and
	// cells as they are and adds nothing.
	TableColumns() []metav1.TableColumnDefinition
	// TableRow returns the cells of one object's row, matching TableColumns
	// one to one (the name cell included). Ages are computed against the
	// strategy's clock.
	TableRow(obj runtime.Object) []interface{}
}

// Core returns the core/v1 kinds kedge serves: namespaces, nodes, pods,
// events, config maps and secrets, with ages in tables measured against the
// wall clock.
func Core() []Resource {
	return CoreWithClock(time.Now)
}

// CoreWithClock is Core with an injected clock, used by the tables' AGE and
// LAST SEEN columns; tests pass a fixed time.
func CoreWithClock(now func() time.Time) []Resource {
	return []Resource{
		namespaceResource(now),
		nodeResource(now),
		podResource(now),
		eventResource(now),
		configMapResource(now),
		secretResource(now),
	}
}

// allVerbs is what discovery lists for a kind served with every verb, in the
// order Kubernetes lists them. A fresh slice each call, so no caller can
// alias one kind's list into another's.
func allVerbs() []string {
	return []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
}

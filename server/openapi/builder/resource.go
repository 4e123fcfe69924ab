package builder

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// ErrInvalidConfig is wrapped by every error Config.Validate returns.
var ErrInvalidConfig = errors.New("invalid openapi config")

// Kubernetes verbs a Resource may list, as discovery names them.
const (
	VerbGet              = "get"
	VerbList             = "list"
	VerbWatch            = "watch"
	VerbCreate           = "create"
	VerbUpdate           = "update"
	VerbPatch            = "patch"
	VerbDelete           = "delete"
	VerbDeleteCollection = "deletecollection"
)

var knownVerbs = []string{VerbGet, VerbList, VerbWatch, VerbCreate, VerbUpdate, VerbPatch, VerbDelete, VerbDeleteCollection}

// Resource is one served resource, as one row of discovery describes it.
// Its fields line up with server/registry.Resource so the server converts
// one into the other field by field.
type Resource struct {
	Group   string // "" for the core group
	Version string // "v1"
	Kind    string // "Pod"
	// Plural is the lower-case name used in URLs ("pods").
	Plural     string
	Namespaced bool
	// Verbs are the Kubernetes verbs served on the resource itself: get,
	// list, watch, create, update, patch, delete, deletecollection.
	Verbs []string
	// Subresources served under /<plural>/<name>/<sub>; each must be one the
	// package knows (see subresourceTable): status, finalize, log, binding,
	// ephemeralcontainers, resize.
	Subresources []string
	// DeleteReturnsObject says DELETE answers with the deleted object (as
	// pods do in Kubernetes) rather than a metav1.Status.
	DeleteReturnsObject bool
	// GoPackage is the Go import path whose generated definitions describe
	// Kind. Empty means k8s.io/api/<first label of Group, "core" for
	// "">/<Version>, which is right for every group of k8s.io/api.
	GoPackage string
}

// goPackage returns the Go import path of the resource's types.
func (r Resource) goPackage() string {
	if r.GoPackage != "" {
		return r.GoPackage
	}
	short := "core"
	if r.Group != "" {
		short, _, _ = strings.Cut(r.Group, ".")
	}
	return "k8s.io/api/" + short + "/" + r.Version
}

// typeName returns the generated definition key of a kind of the resource's
// package ("k8s.io/api/core/v1.Pod").
func (r Resource) typeName(kind string) string { return r.goPackage() + "." + kind }

// prefix is the URL prefix of the resource's group version, without a
// trailing slash: "/api/v1" or "/apis/apps/v1".
func (r Resource) prefix() string {
	if r.Group == "" {
		return "/api/" + r.Version
	}
	return "/apis/" + r.Group + "/" + r.Version
}

func (r Resource) has(verb string) bool { return slices.Contains(r.Verbs, verb) }

// subresource is what the package knows about one subresource: the verbs it
// serves and the Go types of its bodies, mirroring the storage Kubernetes
// registers under that name.
type subresource struct {
	// kind of the object read and written; "" means the parent's kind.
	kind string
	// verbs served (a subset of get, update, patch, create).
	verbs []string
	// responseType, when set, replaces the object as the GET response
	// ("string" for a log stream).
	responseType string
	// extraProduces are media types served before the usual ones.
	extraProduces []string
	// connect: served by GET and POST that upgrade the connection
	// (kube-apiserver's "connect" action), with getOptions as parameters.
	connect bool
	// getOptions is the options struct whose fields become the GET query
	// parameters (corev1.PodLogOptions for log), or nil.
	getOptions any
}

// Config says what the documents describe. The zero value is not usable;
// start from DefaultConfig and set Resources.
type Config struct {
	// Resources are the served resources, in any order. At least one.
	Resources []Resource
	// Title is info.title of every document. Default "Kubernetes": clients
	// such as kubectl and generated code expect the upstream title.
	Title string
	// Version is info.version, the server's version string such as
	// "v1.34.2". Default "unversioned".
	Version string
	// MediaTypes are the media types the server encodes objects in, listed
	// in every operation's "produces". Default application/json and
	// application/yaml.
	MediaTypes []string
	// StreamMediaTypes are the media types of watch streams, added to the
	// produces of list and watch operations. Default
	// application/json;stream=watch.
	StreamMediaTypes []string
	// PatchTypes are the content types PATCH accepts. Default JSON patch,
	// merge patch, strategic merge patch and apply patch (YAML).
	PatchTypes []string
}

// DefaultConfig returns a Config with every default set and no resources.
func DefaultConfig() Config {
	return Config{
		Title:            "Kubernetes",
		Version:          "unversioned",
		MediaTypes:       []string{"application/json", "application/yaml"},
		StreamMediaTypes: []string{"application/json;stream=watch"},
		PatchTypes: []string{
			string(types.JSONPatchType),
			string(types.MergePatchType),
			string(types.StrategicMergePatchType),
			string(types.ApplyYAMLPatchType),
		},
	}
}

// Validate reports the first problem with the config, wrapping
// ErrInvalidConfig. Whether each kind has a generated definition is checked
// by New, which has the definitions at hand.
func (c Config) Validate() error {
	if c.Title == "" || c.Version == "" {
		return fmt.Errorf("%w: Title and Version must be set (start from DefaultConfig)", ErrInvalidConfig)
	}
	if len(c.MediaTypes) == 0 || len(c.PatchTypes) == 0 {
		return fmt.Errorf("%w: MediaTypes and PatchTypes must not be empty (start from DefaultConfig)", ErrInvalidConfig)
	}
	if len(c.Resources) == 0 {
		return fmt.Errorf("%w: no resources", ErrInvalidConfig)
	}
	seen := map[string]bool{}
	for _, r := range c.Resources {
		id := r.Group + "/" + r.Version + "/" + r.Plural
		switch {
		case r.Version == "" || r.Kind == "" || r.Plural == "":
			return fmt.Errorf("%w: resource %q: Version, Kind and Plural are required", ErrInvalidConfig, id)
		case strings.ContainsAny(r.Plural, "/{}") || strings.ContainsAny(r.Group+r.Version, "/{}"):
			return fmt.Errorf("%w: resource %q: names must not contain '/', '{' or '}'", ErrInvalidConfig, id)
		case seen[id]:
			return fmt.Errorf("%w: resource %q listed twice", ErrInvalidConfig, id)
		}
		seen[id] = true
		for _, v := range r.Verbs {
			if !slices.Contains(knownVerbs, v) {
				return fmt.Errorf("%w: resource %q: unknown verb %q (known: %s)", ErrInvalidConfig, id, v, strings.Join(knownVerbs, ", "))
			}
		}
		for _, s := range r.Subresources {
			if _, ok := subresourceTable[s]; !ok {
				return fmt.Errorf("%w: resource %q: unknown subresource %q: describe it in subresourceTable first", ErrInvalidConfig, id, s)
			}
		}
	}
	return nil
}

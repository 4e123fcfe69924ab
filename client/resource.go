package client

import (
	"net/url"
	"path"
)

// Resource addresses a collection of the API: group, version, plural and,
// for namespaced kinds, the namespace. The zero Namespace means
// cluster-scoped, or all namespaces for List and Watch of namespaced kinds.
type Resource struct {
	Group     string // "" for the core group
	Version   string // "v1"
	Resource  string // plural, lower case: "pods"
	Namespace string // "" for cluster-scoped kinds or all namespaces
}

// Common resources used by kedge's own components.
var (
	Pods       = Resource{Version: "v1", Resource: "pods"}
	Nodes      = Resource{Version: "v1", Resource: "nodes"}
	Namespaces = Resource{Version: "v1", Resource: "namespaces"}
	Events     = Resource{Version: "v1", Resource: "events"}
	Services   = Resource{Version: "v1", Resource: "services"}
	Endpoints  = Resource{Version: "v1", Resource: "endpoints"}
	ConfigMaps = Resource{Version: "v1", Resource: "configmaps"}
	Secrets    = Resource{Version: "v1", Resource: "secrets"}
	Leases     = Resource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}
)

// In returns r addressed to namespace ns.
func (r Resource) In(ns string) Resource {
	r.Namespace = ns
	return r
}

// path builds the URL path of the collection, or of one object and its
// subresource when name (and sub) are given.
func (r Resource) path(name, sub string) string {
	var p string
	if r.Group == "" {
		p = "/api/" + r.Version
	} else {
		p = "/apis/" + r.Group + "/" + r.Version
	}
	if r.Namespace != "" {
		p += "/namespaces/" + url.PathEscape(r.Namespace)
	}
	p += "/" + r.Resource
	if name != "" {
		p += "/" + url.PathEscape(name)
		if sub != "" {
			p += "/" + sub
		}
	}
	return path.Clean(p)
}

// String returns the resource as group/version/plural for error messages.
func (r Resource) String() string {
	if r.Group == "" {
		return r.Version + "/" + r.Resource
	}
	return r.Group + "/" + r.Version + "/" + r.Resource
}

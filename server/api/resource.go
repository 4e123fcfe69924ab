package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"

	"kedge.dev/kedge/raftstore"
	"kedge.dev/kedge/server/registry"
)

// resource is a registry.Resource with what the handlers derive from it.
type resource struct {
	registry.Resource
	gvk      schema.GroupVersionKind
	listGVK  schema.GroupVersionKind
	gr       schema.GroupResource
	verbs    sets.Set[string]
	subs     sets.Set[string]
	fieldSet sets.Set[string] // field labels a fieldSelector may use
}

func newResource(r registry.Resource) (*resource, error) {
	res := &resource{
		Resource: r,
		gvk:      schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind},
		listGVK:  schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind + "List"},
		gr:       schema.GroupResource{Group: r.Group, Resource: r.Resource},
		verbs:    sets.New(r.Verbs...),
		subs:     sets.New(r.Subresources...),
		fieldSet: sets.New[string](),
	}
	if _, err := meta.Accessor(r.New()); err != nil {
		return nil, fmt.Errorf("api: resource %s: New() has no object metadata: %w", res.gr, err)
	}
	// The fields an empty object reports are the fields the kind supports.
	for k := range r.Strategy.Fields(r.New()) {
		res.fieldSet.Insert(k)
	}
	res.fieldSet.Insert("metadata.name")
	if r.Namespaced {
		res.fieldSet.Insert("metadata.namespace")
	}
	return res, nil
}

// Key returns the store key of one object: "/registry/<group>/<resource>/
// [<namespace>/]<name>", with group "core" for the core group. With an
// empty name it returns the prefix of a collection (ending in "/"); with an
// empty namespace for a namespaced kind, the prefix across namespaces.
func Key(group, resource, namespace, name string) string {
	if group == "" {
		group = "core"
	}
	k := "/registry/" + group + "/" + resource + "/"
	if namespace != "" {
		k += namespace + "/"
	}
	return k + name
}

func (res *resource) key(namespace, name string) string {
	if !res.Namespaced {
		namespace = ""
	}
	return Key(res.Group, res.Resource.Resource, namespace, name)
}

// decode turns a stored value into an object with its resourceVersion and
// type set.
func (res *resource) decode(kv raftstore.KeyValue) (runtime.Object, error) {
	obj := res.New()
	if err := json.Unmarshal(kv.Value, obj); err != nil {
		return nil, fmt.Errorf("decode stored %s %s: %w", res.gr, kv.Key, err)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	m.SetResourceVersion(strconv.FormatInt(kv.ModRevision, 10))
	obj.GetObjectKind().SetGroupVersionKind(res.gvk)
	return obj, nil
}

// encode returns the stored form of obj: its JSON without resourceVersion.
func (res *resource) encode(obj runtime.Object) ([]byte, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	rv := m.GetResourceVersion()
	m.SetResourceVersion("")
	obj.GetObjectKind().SetGroupVersionKind(res.gvk)
	data, err := json.Marshal(obj)
	m.SetResourceVersion(rv)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", res.gr, m.GetName(), err)
	}
	return data, nil
}

// getObject reads one object; errors are the store's (ErrNotFound, ...).
func (s *Server) getObject(ctx context.Context, res *resource, namespace, name string) (runtime.Object, raftstore.KeyValue, error) {
	kv, err := s.getStored(ctx, res, namespace, name)
	if err != nil {
		return nil, kv, err
	}
	obj, err := res.decode(kv)
	return obj, kv, err
}

// getStored reads one object's stored value; errors are the store's.
func (s *Server) getStored(ctx context.Context, res *resource, namespace, name string) (raftstore.KeyValue, error) {
	kv, err := s.cfg.Store.Get(ctx, res.key(namespace, name))
	if err != nil {
		return kv, fmt.Errorf("get %s %s/%s: %w", res.gr, namespace, name, err)
	}
	return kv, nil
}

// accessor is meta.Accessor for objects known to have metadata (checked in
// newResource).
func accessor(obj runtime.Object) metav1.Object {
	m, err := meta.Accessor(obj)
	if err != nil {
		panic(fmt.Sprintf("api: %T has no object metadata: %v", obj, err))
	}
	return m
}

// parseRV parses a resourceVersion; "" is 0.
func parseRV(rv string) (int64, error) {
	if rv == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid resource version %q", rv)
	}
	return n, nil
}

// lookup finds a served resource by group/version and plural name.
func (s *Server) lookup(gv schema.GroupVersion, name string) *resource {
	return s.resources[gv][name]
}

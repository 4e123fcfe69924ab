package builder

import (
	"bytes"
	"net/http"
	"slices"
	"sort"
	"strings"
	"unicode"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kube-openapi/pkg/common"
)

// Extensions kube-apiserver puts on every resource operation.
const (
	extensionGVK    = "x-kubernetes-group-version-kind"
	extensionAction = "x-kubernetes-action"
)

// metaV1 prefixes the generated definition keys of metav1 types.
const metaV1 = "k8s.io/apimachinery/pkg/apis/meta/v1."

// typeName is a generated definition key ("k8s.io/api/core/v1.Pod") standing
// for a Go value: kube-openapi's builders name a route's body and response
// types through util.GetCanonicalTypeName, which asks this interface first,
// so no object of the kind needs to exist. "string" names a plain string.
type typeName string

// OpenAPICanonicalTypeName implements util.OpenAPICanonicalTypeNamer.
func (t typeName) OpenAPICanonicalTypeName() string { return string(t) }

// statusResponse implements common.StatusCodeResponse.
type statusResponse struct {
	code    int
	message string
	model   typeName
}

func (s statusResponse) Code() int       { return s.code }
func (s statusResponse) Message() string { return s.message }
func (s statusResponse) Model() any      { return s.model }

// route implements common.Route. The operation ID is final (with group and
// version, as k8s.io/apiserver's GetOperationIDAndTags makes it) and the
// builders get it back through operationIDAndTags.
type route struct {
	method    string
	path      string
	id        string
	tags      []string
	doc       string
	params    []common.Parameter
	consumes  []string
	produces  []string
	metadata  map[string]any
	body      typeName // "" when the route reads no body
	responses []common.StatusCodeResponse
}

var _ common.Route = (*route)(nil)

func (r *route) Method() string                 { return r.method }
func (r *route) Path() string                   { return r.path }
func (r *route) OperationName() string          { return r.id }
func (r *route) Parameters() []common.Parameter { return r.params }
func (r *route) Description() string            { return r.doc }
func (r *route) Consumes() []string             { return r.consumes }
func (r *route) Produces() []string             { return r.produces }
func (r *route) Metadata() map[string]any       { return r.metadata }
func (r *route) ResponsePayloadSample() any     { return nil }
func (r *route) StatusCodeResponses() []common.StatusCodeResponse {
	return r.responses
}

// RequestPayloadSample returns a nil interface, not an empty typeName, when
// there is no body: the builders test it against nil.
func (r *route) RequestPayloadSample() any {
	if r.body == "" {
		return nil
	}
	return r.body
}

// operationIDAndTags is common.Config.GetOperationIDAndTagsFromRoute.
func operationIDAndTags(r common.Route) (string, []string, error) {
	if rt, ok := r.(*route); ok {
		return rt.id, rt.tags, nil
	}
	return r.OperationName(), nil, nil
}

// container implements common.RouteContainer: the routes under one root
// path, which is one group version ("/api/v1") or one discovery endpoint
// ("/api", "/apis", "/apis/apps", "/version"). kube-apiserver's v3
// documents are one per container, keyed by the root path without its
// leading slash.
type container struct {
	root   string
	routes []common.Route
}

var _ common.RouteContainer = (*container)(nil)

func (c *container) RootPath() string                   { return c.root }
func (c *container) PathParameters() []common.Parameter { return nil }
func (c *container) Routes() []common.Route             { return c.routes }

// routeBuilder makes the routes of a Config.
type routeBuilder struct {
	cfg        Config
	listOpts   []param
	createOpts []param
	updateOpts []param
	patchOpts  []param
	deleteOpts []param
}

func newRouteBuilder(cfg Config) *routeBuilder {
	return &routeBuilder{
		cfg:        cfg,
		listOpts:   objectParams(&metav1.ListOptions{}),
		createOpts: objectParams(&metav1.CreateOptions{}),
		updateOpts: objectParams(&metav1.UpdateOptions{}),
		patchOpts:  objectParams(&metav1.PatchOptions{}),
		deleteOpts: objectParams(&metav1.DeleteOptions{}),
	}
}

// containers returns every container, sorted by root path: the discovery
// endpoints and one per group version holding its resources.
func (b *routeBuilder) containers() []*container {
	byRoot := map[string]*container{}
	// get returns the container of root, creating it with its discovery
	// route first.
	get := func(root string, discovery func() *route) *container {
		c, ok := byRoot[root]
		if !ok {
			c = &container{root: root, routes: []common.Route{discovery()}}
			byRoot[root] = c
		}
		return c
	}
	get("/apis", func() *route {
		return b.discoveryRoute("/apis", "getAPIVersions", "get available API versions", metaV1+"APIGroupList")
	})
	get("/version", func() *route {
		return &route{
			method: http.MethodGet, path: "/version/", id: "getCodeVersion", tags: []string{"version"},
			doc:      "get the version information for this server",
			consumes: []string{"application/json"}, produces: []string{"application/json"},
			responses: []common.StatusCodeResponse{statusResponse{http.StatusOK, "OK", "k8s.io/apimachinery/pkg/version.Info"}},
		}
	})
	for _, r := range b.cfg.Resources {
		if r.Group == "" {
			get("/api", func() *route {
				return b.discoveryRoute("/api", "getAPIVersions", "get available API versions", metaV1+"APIVersions")
			})
		} else {
			get("/apis/"+r.Group, func() *route {
				return b.discoveryRoute("/apis/"+r.Group, "getAPIGroup", "get information of a group", metaV1+"APIGroup")
			})
		}
		c := get(r.prefix(), func() *route {
			return b.discoveryRoute(r.prefix(), "getAPIResources", "get available resources", metaV1+"APIResourceList")
		})
		c.routes = append(c.routes, b.resourceRoutes(r)...)
	}
	out := make([]*container, 0, len(byRoot))
	for _, c := range byRoot {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].root < out[j].root })
	return out
}

// discoveryRoute is the GET of a discovery endpoint, as k8s.io/apiserver's
// discovery handlers register it.
func (b *routeBuilder) discoveryRoute(root, op, doc string, model typeName) *route {
	path := root + "/"
	id, tags := operationID(op, path)
	return &route{
		method: http.MethodGet, path: path, id: id, tags: tags, doc: doc,
		consumes: b.cfg.MediaTypes, produces: b.cfg.MediaTypes,
		responses: []common.StatusCodeResponse{statusResponse{http.StatusOK, "OK", model}},
	}
}

// action is one route of a resource before it is described: the installer's
// verb (LIST, WATCHLIST, GET, PUT, PATCH, POST, DELETE, DELETECOLLECTION,
// WATCH), the path under the group version prefix and its path parameters.
type action struct {
	verb          string
	path          string
	params        []common.Parameter
	allNamespaces bool
}

// resourceRoutes returns the routes of a resource and of its subresources,
// following k8s.io/apiserver's APIInstaller.registerResourceHandlers.
func (b *routeBuilder) resourceRoutes(r Resource) []common.Route {
	var out []common.Route
	out = append(out, b.routesFor(r, "", subresource{verbs: r.Verbs})...)
	for _, name := range r.Subresources {
		out = append(out, b.routesFor(r, name, subresourceTable[name])...)
	}
	return out
}

func (b *routeBuilder) routesFor(r Resource, sub string, sr subresource) []common.Route {
	has := func(v string) bool { return slices.Contains(sr.verbs, v) }
	// kind is the kind stored under this path (Binding for pods/binding);
	// the parent's kind names the operations.
	kind := r.Kind
	if sr.kind != "" {
		kind = sr.kind
	}
	object := typeName(r.typeName(kind))
	nameP := pathParam("name", "name of the "+kind)

	var resourcePath, itemPath string
	var resourceParams, nameParams []common.Parameter
	if r.Namespaced {
		resourcePath = "namespaces/{namespace}/" + r.Plural
		resourceParams = []common.Parameter{pathParam("namespace", namespaceDescription)}
	} else {
		resourcePath = r.Plural
	}
	itemPath = resourcePath + "/{name}"
	nameParams = append(append([]common.Parameter{}, resourceParams...), nameP)
	if sub != "" {
		itemPath += "/" + sub
		resourcePath = itemPath
		resourceParams = nameParams
	}

	var actions []action
	add := func(ok bool, a action) {
		if ok {
			actions = append(actions, a)
		}
	}
	add(has(VerbList), action{verb: "LIST", path: resourcePath, params: resourceParams})
	add(has(VerbCreate), action{verb: "POST", path: resourcePath, params: resourceParams})
	add(has(VerbDeleteCollection), action{verb: "DELETECOLLECTION", path: resourcePath, params: resourceParams})
	add(has(VerbList) && has(VerbWatch), action{verb: "WATCHLIST", path: "watch/" + resourcePath, params: resourceParams})
	add(has(VerbGet), action{verb: "GET", path: itemPath, params: nameParams})
	add(has(VerbUpdate), action{verb: "PUT", path: itemPath, params: nameParams})
	add(has(VerbPatch), action{verb: "PATCH", path: itemPath, params: nameParams})
	add(has(VerbDelete), action{verb: "DELETE", path: itemPath, params: nameParams})
	add(has(VerbWatch), action{verb: "WATCH", path: "watch/" + itemPath, params: nameParams})
	add(sr.connect, action{verb: "CONNECTGET", path: itemPath, params: nameParams})
	add(sr.connect, action{verb: "CONNECTPOST", path: itemPath, params: nameParams})
	if r.Namespaced && sub == "" {
		add(has(VerbList), action{verb: "LIST", path: r.Plural, allNamespaces: true})
		add(has(VerbList) && has(VerbWatch), action{verb: "WATCHLIST", path: "watch/" + r.Plural, allNamespaces: true})
	}

	// Operations, documentation and x-kubernetes-group-version-kind name
	// the parent kind; bodies are the stored kind.
	parent := r.Kind
	namespaced := ""
	if r.Namespaced {
		namespaced = "Namespaced"
	}
	title := ""
	if sub != "" {
		title = strings.ToUpper(sub[:1]) + sub[1:]
	}
	gvk := metav1.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: kind}
	list := typeName(r.typeName(r.Kind + "List"))
	deleted := typeName(metaV1 + "Status")
	if r.DeleteReturnsObject {
		deleted = object
	}
	produced := object
	if sr.responseType != "" {
		produced = typeName(sr.responseType)
	}
	media := append(append([]string{}, sr.extraProduces...), b.cfg.MediaTypes...)
	streaming := append(append([]string{}, b.cfg.MediaTypes...), b.cfg.StreamMediaTypes...)
	article := articleFor(parent)

	out := make([]common.Route, 0, len(actions))
	for _, a := range actions {
		ns, suffix := namespaced, ""
		if a.allNamespaces {
			ns, suffix = "", "ForAllNamespaces"
		}
		name := ns + parent + title + suffix
		rt := &route{
			path:     r.prefix() + "/" + a.path,
			consumes: []string{"*/*"},
			produces: b.cfg.MediaTypes,
			metadata: map[string]any{extensionGVK: gvk, extensionAction: strings.ToLower(a.verb)},
		}
		params := []common.Parameter{prettyParam}
		ok := func(models ...statusResponse) {
			for _, m := range models {
				rt.responses = append(rt.responses, m)
			}
		}
		switch a.verb {
		case "GET":
			rt.method, name = http.MethodGet, "read"+name
			rt.doc = "read the specified " + parent
			if sub != "" {
				rt.doc = "read " + sub + " of the specified " + parent
			}
			rt.produces = media
			if sr.getOptions != nil {
				params = appendParams(params, objectParams(sr.getOptions))
			}
			ok(statusResponse{http.StatusOK, "OK", produced})
		case "LIST":
			rt.method, name = http.MethodGet, "list"+name
			rt.doc = "list objects of kind " + parent
			if has(VerbWatch) {
				rt.doc = "list or watch objects of kind " + parent
			}
			rt.produces = streaming
			params = appendParams(params, b.listOpts)
			ok(statusResponse{http.StatusOK, "OK", list})
		case "PUT":
			rt.method, name = http.MethodPut, "replace"+name
			rt.doc = "replace the specified " + parent
			if sub != "" {
				rt.doc = "replace " + sub + " of the specified " + parent
			}
			rt.body = object
			params = append(appendParams(params, b.updateOpts), bodyParam(true))
			ok(statusResponse{http.StatusOK, "OK", object}, statusResponse{http.StatusCreated, "Created", object})
		case "PATCH":
			rt.method, name = http.MethodPatch, "patch"+name
			rt.doc = "partially update the specified " + parent
			if sub != "" {
				rt.doc = "partially update " + sub + " of the specified " + parent
			}
			rt.consumes = b.cfg.PatchTypes
			rt.body = metaV1 + "Patch"
			params = append(appendParams(params, b.patchOpts), bodyParam(true))
			ok(statusResponse{http.StatusOK, "OK", object}, statusResponse{http.StatusCreated, "Created", object})
		case "POST":
			rt.method, name = http.MethodPost, "create"+name
			rt.doc = "create" + article + parent
			if sub != "" {
				rt.doc = "create " + sub + " of" + article + parent
			}
			rt.body = object
			params = append(appendParams(params, b.createOpts), bodyParam(true))
			ok(statusResponse{http.StatusOK, "OK", object}, statusResponse{http.StatusCreated, "Created", object},
				statusResponse{http.StatusAccepted, "Accepted", object})
		case "DELETE":
			rt.method, name = http.MethodDelete, "delete"+name
			rt.doc = "delete" + article + parent
			rt.body = metaV1 + "DeleteOptions"
			params = append(appendParams(params, b.deleteOpts), bodyParam(false))
			ok(statusResponse{http.StatusOK, "OK", deleted}, statusResponse{http.StatusAccepted, "Accepted", deleted})
		case "DELETECOLLECTION":
			rt.method, name = http.MethodDelete, "deletecollection"+name
			rt.doc = "delete collection of " + parent
			rt.body = metaV1 + "DeleteOptions"
			params = appendParams(params, b.deleteOpts)
			params = appendParams(params, withoutParams(b.listOpts, "watch", "allowWatchBookmarks"))
			params = append(params, bodyParam(false))
			ok(statusResponse{http.StatusOK, "OK", metaV1 + "Status"})
		case "WATCH":
			rt.method, name = http.MethodGet, "watch"+name
			rt.doc = "watch changes to an object of kind " + parent + ". deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."
			rt.produces = streaming
			params = appendParams(params, b.listOpts)
			ok(statusResponse{http.StatusOK, "OK", metaV1 + "WatchEvent"})
		case "CONNECTGET", "CONNECTPOST":
			rt.method = strings.TrimPrefix(a.verb, "CONNECT")
			name = "connect" + rt.method[:1] + strings.ToLower(rt.method[1:]) + name
			rt.doc = "connect " + rt.method + " requests to " + sub + " of " + parent
			rt.produces = []string{"*/*"}
			rt.metadata[extensionAction] = "connect"
			params = nil // kube-apiserver's connect operations take no "pretty"
			if sr.getOptions != nil {
				params = appendParams(params, objectParams(sr.getOptions))
			}
			ok(statusResponse{http.StatusOK, "OK", typeName("string")})
		case "WATCHLIST":
			rt.method, name = http.MethodGet, "watch"+ns+parent+title+"List"+suffix
			rt.doc = "watch individual changes to a list of " + parent + ". deprecated: use the 'watch' parameter with a list operation instead."
			rt.produces = streaming
			params = appendParams(params, b.listOpts)
			ok(statusResponse{http.StatusOK, "OK", metaV1 + "WatchEvent"})
		}
		rt.params = append(params, a.params...)
		rt.id, rt.tags = operationID(name, rt.path)
		out = append(out, rt)
	}
	return out
}

func appendParams(to []common.Parameter, ps []param) []common.Parameter {
	for _, p := range ps {
		to = append(to, p)
	}
	return to
}

func withoutParams(ps []param, names ...string) []param {
	var out []param
	for _, p := range ps {
		if !slices.Contains(names, p.name) {
			out = append(out, p)
		}
	}
	return out
}

// articleFor is k8s.io/apiserver's GetArticleForNoun with " " padding.
func articleFor(noun string) string {
	if !strings.HasSuffix(noun, "ss") && strings.HasSuffix(noun, "s") {
		return " "
	}
	if strings.ContainsRune("aeiou", unicode.ToLower(rune(noun[0]))) {
		return " an "
	}
	return " a "
}

// operationVerbs are the verb prefixes of kube-apiserver's operation names,
// longest first so "deletecollection" wins over "delete".
var operationVerbs = []string{"deletecollection", "replace", "connect", "create", "delete", "patch", "proxy", "watch", "list", "read", "get"}

// operationID turns an installer operation name and its path into
// kube-apiserver's operation ID and tags, as k8s.io/apiserver's
// GetOperationIDAndTagsFromRoute does: the group (".k8s.io" trimmed, "core"
// for /api) and version go between the verb and the rest, so
// "patchNamespacedPod" on /api/v1/... becomes "patchCoreV1NamespacedPod"
// tagged "core_v1".
func operationID(op, path string) (string, []string) {
	prefix := ""
	for _, v := range operationVerbs {
		if strings.HasPrefix(op, v) {
			prefix = v
			break
		}
	}
	rest := op[len(prefix):]
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) >= 1 && parts[0] == "api" {
		parts = append([]string{"apis", "core"}, parts[1:]...)
	}
	var tags []string
	if len(parts) >= 2 && parts[0] == "apis" {
		group := strings.TrimSuffix(parts[1], ".k8s.io")
		prefix += validOperationID(group, prefix != "")
		tag := validOperationID(group, false)
		if len(parts) > 2 {
			prefix += validOperationID(parts[2], prefix != "")
			tag += "_" + validOperationID(parts[2], false)
		}
		tags = append(tags, tag)
	} else if len(parts) >= 1 {
		tags = append(tags, validOperationID(parts[0], false))
	}
	if rest != "" {
		rest = strings.ToUpper(rest[:1]) + rest[1:]
	}
	return prefix + rest, tags
}

// validOperationID is k8s.io/apiserver's ToValidOperationID: it drops
// characters that cannot be in an identifier and capitalizes what follows
// them.
func validOperationID(s string, capitalizeFirst bool) string {
	var buf bytes.Buffer
	capitalize := capitalizeFirst
	for i, r := range s {
		if unicode.IsLetter(r) || r == '_' || (i != 0 && unicode.IsDigit(r)) {
			if capitalize {
				buf.WriteRune(unicode.ToUpper(r))
				capitalize = false
			} else {
				buf.WriteRune(r)
			}
		} else {
			capitalize = true
		}
	}
	return buf.String()
}

// subresourceTable describes the subresources a Resource may list, as
// Kubernetes registers their storage. Adding one is adding a row.
var subresourceTable = map[string]subresource{
	// status of any kind: the parent object, written only for its status.
	"status": {verbs: []string{VerbGet, VerbUpdate, VerbPatch}},
	// namespaces/finalize: PUT of the Namespace to drop spec.finalizers.
	"finalize": {verbs: []string{VerbUpdate}},
	// pods/log: the container log as text, options from PodLogOptions.
	"log": {
		verbs:         []string{VerbGet},
		responseType:  "string",
		extraProduces: []string{"text/plain"},
		getOptions:    &corev1.PodLogOptions{},
	},
	// pods/binding: POST of a Binding assigns the pod to a node.
	"binding": {kind: "Binding", verbs: []string{VerbCreate}},
	// pods/ephemeralcontainers and pods/resize: the Pod, for one part.
	"ephemeralcontainers": {verbs: []string{VerbGet, VerbUpdate, VerbPatch}},
	"resize":              {verbs: []string{VerbGet, VerbUpdate, VerbPatch}},
	// pods/exec, pods/attach and pods/portforward: GET (WebSocket) and POST
	// (SPDY) that upgrade the connection; the options are query parameters.
	"exec":        {kind: "PodExecOptions", connect: true, getOptions: &corev1.PodExecOptions{}},
	"attach":      {kind: "PodAttachOptions", connect: true, getOptions: &corev1.PodAttachOptions{}},
	"portforward": {kind: "PodPortForwardOptions", connect: true, getOptions: &corev1.PodPortForwardOptions{}},
}

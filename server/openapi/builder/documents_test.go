package builder

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"kedge.dev/kedge/server/openapi"
)

// get serves one request through the documents and returns the response
// and its body.
func get(t testing.TB, d *openapi.Documents, path, accept string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	d.ServeHTTP(rec, req)
	res := rec.Result()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

func newTestDocuments(t testing.TB) *openapi.Documents {
	t.Helper()
	d, err := Build(testConfig())
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return d
}

// v2Doc fetches and parses /openapi/v2.
func v2Doc(t testing.TB, d *openapi.Documents) (*spec.Swagger, []byte) {
	t.Helper()
	res, body := get(t, d, "/openapi/v2", "application/json")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi/v2: %s", res.Status)
	}
	var sw spec.Swagger
	if err := json.Unmarshal(body, &sw); err != nil {
		t.Fatalf("parse /openapi/v2: %v", err)
	}
	return &sw, body
}

// v3Docs follows /openapi/v3 discovery and parses every document it lists.
func v3Docs(t testing.TB, d *openapi.Documents) map[string]*spec3.OpenAPI {
	t.Helper()
	res, body := get(t, d, "/openapi/v3", "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi/v3: %s", res.Status)
	}
	var disc struct {
		Paths map[string]struct {
			ServerRelativeURL string `json:"serverRelativeURL"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(body, &disc); err != nil {
		t.Fatalf("parse /openapi/v3: %v", err)
	}
	out := map[string]*spec3.OpenAPI{}
	for key, p := range disc.Paths {
		res, body := get(t, d, p.ServerRelativeURL, "application/json")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", p.ServerRelativeURL, res.Status)
		}
		var doc spec3.OpenAPI
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("parse %s: %v", p.ServerRelativeURL, err)
		}
		out[key] = &doc
	}
	return out
}

// operation returns the operation of a path item for an HTTP method.
func operationOf[O any](get, put, post, patch, del *O, method string) *O {
	switch method {
	case http.MethodGet:
		return get
	case http.MethodPut:
		return put
	case http.MethodPost:
		return post
	case http.MethodPatch:
		return patch
	case http.MethodDelete:
		return del
	}
	return nil
}

// opCase is what one operation must look like in both documents.
type opCase struct {
	path, method string
	id, action   string
	gvkKind      string
	params       []string // query and path parameters that must be there (path- or operation-level)
	absent       []string // parameters that must not be there
	body         string   // definition of the request body, "" for none
	response     string   // definition (or "string") of the 200 response
	consumes     []string // v3 request body media types; nil: not checked
}

var opCases = []opCase{
	{
		path: "/api/v1/namespaces/{namespace}/pods/{name}", method: http.MethodGet,
		id: "readCoreV1NamespacedPod", action: "get", gvkKind: "Pod",
		params: []string{"name", "namespace", "pretty"}, absent: []string{"fieldValidation", "watch"},
		response: "io.k8s.api.core.v1.Pod",
	},
	{
		path: "/api/v1/namespaces/{namespace}/pods/{name}", method: http.MethodPatch,
		id: "patchCoreV1NamespacedPod", action: "patch", gvkKind: "Pod",
		params: []string{"name", "namespace", "pretty", "dryRun", "fieldManager", "fieldValidation", "force"},
		body:   "io.k8s.apimachinery.pkg.apis.meta.v1.Patch", response: "io.k8s.api.core.v1.Pod",
		consumes: []string{"application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"},
	},
	{
		path: "/api/v1/namespaces/{namespace}/pods/{name}", method: http.MethodPut,
		id: "replaceCoreV1NamespacedPod", action: "put", gvkKind: "Pod",
		params: []string{"dryRun", "fieldManager", "fieldValidation", "pretty"}, absent: []string{"force"},
		body: "io.k8s.api.core.v1.Pod", response: "io.k8s.api.core.v1.Pod", consumes: []string{"*/*"},
	},
	{
		path: "/api/v1/namespaces/{namespace}/pods/{name}", method: http.MethodDelete,
		id: "deleteCoreV1NamespacedPod", action: "delete", gvkKind: "Pod",
		params: []string{"dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy", "pretty"},
		body:   "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions", response: "io.k8s.api.core.v1.Pod",
	},
	{
		path: "/api/v1/namespaces/{namespace}/pods", method: http.MethodGet,
		id: "listCoreV1NamespacedPod", action: "list", gvkKind: "Pod",
		params:   []string{"namespace", "pretty", "labelSelector", "fieldSelector", "watch", "allowWatchBookmarks", "resourceVersion", "resourceVersionMatch", "limit", "continue", "timeoutSeconds", "sendInitialEvents"},
		response: "io.k8s.api.core.v1.PodList",
	},
	{
		path: "/api/v1/namespaces/{namespace}/pods", method: http.MethodPost,
		id: "createCoreV1NamespacedPod", action: "post", gvkKind: "Pod",
		params: []string{"namespace", "pretty", "dryRun", "fieldManager", "fieldValidation"},
		body:   "io.k8s.api.core.v1.Pod", response: "io.k8s.api.core.v1.Pod", consumes: []string{"*/*"},
	},
	{
		path: "/api/v1/namespaces/{namespace}/pods", method: http.MethodDelete,
		id: "deletecollectionCoreV1NamespacedPod", action: "deletecollection", gvkKind: "Pod",
		params: []string{"labelSelector", "gracePeriodSeconds", "continue", "limit"}, absent: []string{"watch", "allowWatchBookmarks"},
		body: "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions", response: "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
	},
	{
		path: "/api/v1/pods", method: http.MethodGet,
		id: "listCoreV1PodForAllNamespaces", action: "list", gvkKind: "Pod",
		params: []string{"labelSelector", "watch"}, absent: []string{"namespace"},
		response: "io.k8s.api.core.v1.PodList",
	},
	{
		path: "/api/v1/watch/namespaces/{namespace}/pods/{name}", method: http.MethodGet,
		id: "watchCoreV1NamespacedPod", action: "watch", gvkKind: "Pod",
		params: []string{"name", "namespace", "watch"}, response: "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
	},
	{
		path: "/api/v1/watch/pods", method: http.MethodGet,
		id: "watchCoreV1PodListForAllNamespaces", action: "watchlist", gvkKind: "Pod",
		response: "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
	},
	{
		path: "/api/v1/namespaces/{namespace}/pods/{name}/status", method: http.MethodPatch,
		id: "patchCoreV1NamespacedPodStatus", action: "patch", gvkKind: "Pod",
		params: []string{"name", "namespace", "fieldValidation", "force"},
		body:   "io.k8s.apimachinery.pkg.apis.meta.v1.Patch", response: "io.k8s.api.core.v1.Pod",
	},
	{
		path: "/api/v1/namespaces/{namespace}/pods/{name}/status", method: http.MethodGet,
		id: "readCoreV1NamespacedPodStatus", action: "get", gvkKind: "Pod", response: "io.k8s.api.core.v1.Pod",
	},
	{
		path: "/api/v1/namespaces/{namespace}/pods/{name}/log", method: http.MethodGet,
		id: "readCoreV1NamespacedPodLog", action: "get", gvkKind: "Pod",
		params:   []string{"container", "follow", "previous", "sinceSeconds", "tailLines", "timestamps", "limitBytes", "insecureSkipTLSVerifyBackend", "stream"},
		absent:   []string{"sinceTime"}, // a *metav1.Time, left out as by kube-apiserver
		response: "string",
	},
	{
		path: "/api/v1/namespaces/{namespace}/pods/{name}/binding", method: http.MethodPost,
		id: "createCoreV1NamespacedPodBinding", action: "post", gvkKind: "Binding",
		params: []string{"name", "namespace", "dryRun", "fieldManager", "fieldValidation"},
		body:   "io.k8s.api.core.v1.Binding", response: "io.k8s.api.core.v1.Binding",
	},
	{
		path: "/api/v1/namespaces/{name}/finalize", method: http.MethodPut,
		id: "replaceCoreV1NamespaceFinalize", action: "put", gvkKind: "Namespace",
		params: []string{"name", "fieldValidation"}, absent: []string{"namespace"},
		body: "io.k8s.api.core.v1.Namespace", response: "io.k8s.api.core.v1.Namespace",
	},
	{
		path: "/api/v1/namespaces/{name}", method: http.MethodDelete,
		id: "deleteCoreV1Namespace", action: "delete", gvkKind: "Namespace",
		body: "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions", response: "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
	},
	{
		path: "/api/v1/nodes/{name}/status", method: http.MethodPatch,
		id: "patchCoreV1NodeStatus", action: "patch", gvkKind: "Node",
		params: []string{"name", "fieldValidation"}, absent: []string{"namespace"},
		body: "io.k8s.apimachinery.pkg.apis.meta.v1.Patch", response: "io.k8s.api.core.v1.Node",
	},
	{
		path: "/api/v1/nodes", method: http.MethodGet,
		id: "listCoreV1Node", action: "list", gvkKind: "Node", response: "io.k8s.api.core.v1.NodeList",
	},
	{
		path: "/api/v1/namespaces/{namespace}/events/{name}", method: http.MethodPatch,
		id: "patchCoreV1NamespacedEvent", action: "patch", gvkKind: "Event",
		params: []string{"fieldValidation"},
		body:   "io.k8s.apimachinery.pkg.apis.meta.v1.Patch", response: "io.k8s.api.core.v1.Event",
	},
	{path: "/api/v1/", method: http.MethodGet, id: "getCoreV1APIResources", response: "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList"},
	{path: "/api/", method: http.MethodGet, id: "getCoreAPIVersions", response: "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions"},
	{path: "/apis/", method: http.MethodGet, id: "getAPIVersions", response: "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList"},
	{path: "/version/", method: http.MethodGet, id: "getCodeVersion", response: "io.k8s.apimachinery.pkg.version.Info"},
}

// gvkExtension decodes an x-kubernetes-group-version-kind extension (an
// object on operations, a list on definitions).
func gvkExtension(t testing.TB, ext spec.Extensions) []map[string]string {
	t.Helper()
	v, ok := ext[extensionGVK]
	if !ok {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var list []map[string]string
	if json.Unmarshal(b, &list) == nil {
		return list
	}
	var one map[string]string
	if err := json.Unmarshal(b, &one); err != nil {
		t.Fatalf("bad %s extension %s: %v", extensionGVK, b, err)
	}
	return []map[string]string{one}
}

func refName(ref spec.Ref) string {
	s := ref.String()
	return s[strings.LastIndex(s, "/")+1:]
}

func TestV2Operations(t *testing.T) {
	sw, _ := v2Doc(t, newTestDocuments(t))
	for _, tc := range opCases {
		t.Run(tc.id, func(t *testing.T) {
			item, ok := sw.Paths.Paths[tc.path]
			if !ok {
				t.Fatalf("no path %s", tc.path)
			}
			op := operationOf(item.Get, item.Put, item.Post, item.Patch, item.Delete, tc.method)
			if op == nil {
				t.Fatalf("no %s on %s", tc.method, tc.path)
			}
			if op.ID != tc.id {
				t.Errorf("operationId = %q, want %q", op.ID, tc.id)
			}
			if got, _ := op.Extensions.GetString(extensionAction); tc.action != "" && got != tc.action {
				t.Errorf("%s = %q, want %q", extensionAction, got, tc.action)
			}
			if tc.gvkKind != "" {
				gvk := gvkExtension(t, op.Extensions)
				if len(gvk) != 1 || gvk[0]["kind"] != tc.gvkKind || gvk[0]["version"] != "v1" || gvk[0]["group"] != "" {
					t.Errorf("%s = %v, want core v1 %s", extensionGVK, gvk, tc.gvkKind)
				}
			}
			// Parameters: path-level and operation-level, references
			// resolved through the shared "parameters" section.
			params := map[string]spec.Parameter{}
			for _, p := range append(append([]spec.Parameter{}, item.Parameters...), op.Parameters...) {
				if p.Ref.String() != "" {
					shared, ok := sw.Parameters[refName(p.Ref)]
					if !ok {
						t.Fatalf("dangling parameter reference %s", p.Ref.String())
					}
					p = shared
				}
				params[p.Name] = p
			}
			for _, name := range tc.params {
				p, ok := params[name]
				if !ok {
					t.Errorf("parameter %q missing", name)
					continue
				}
				if p.Description == "" && name != "body" {
					t.Errorf("parameter %q has no description", name)
				}
			}
			for _, name := range tc.absent {
				if _, ok := params[name]; ok {
					t.Errorf("parameter %q present, want absent", name)
				}
			}
			body, hasBody := params["body"]
			switch {
			case tc.body == "" && hasBody:
				t.Errorf("unexpected body parameter")
			case tc.body != "" && (!hasBody || body.In != "body" || body.Schema == nil || refName(body.Schema.Ref) != tc.body):
				t.Errorf("body = %+v, want a %s", body, tc.body)
			}
			resp := op.Responses.StatusCodeResponses[http.StatusOK]
			got := ""
			if resp.Schema != nil {
				got = refName(resp.Schema.Ref)
				if got == "" && len(resp.Schema.Type) == 1 {
					got = resp.Schema.Type[0]
				}
			}
			if got != tc.response {
				t.Errorf("200 response = %q, want %q", got, tc.response)
			}
			if _, ok := op.Responses.StatusCodeResponses[http.StatusUnauthorized]; !ok {
				t.Errorf("no 401 response")
			}
		})
	}
}

func TestV3Operations(t *testing.T) {
	docs := v3Docs(t, newTestDocuments(t))
	for _, tc := range opCases {
		t.Run(tc.id, func(t *testing.T) {
			key := strings.Trim(tc.path, "/")
			if strings.HasPrefix(key, "api/v1") {
				key = "api/v1"
			}
			doc, ok := docs[key]
			if !ok {
				t.Fatalf("no v3 document %q for %s", key, tc.path)
			}
			item, ok := doc.Paths.Paths[tc.path]
			if !ok {
				t.Fatalf("no path %s in %s", tc.path, key)
			}
			op := operationOf(item.Get, item.Put, item.Post, item.Patch, item.Delete, tc.method)
			if op == nil {
				t.Fatalf("no %s on %s", tc.method, tc.path)
			}
			if op.OperationId != tc.id {
				t.Errorf("operationId = %q, want %q", op.OperationId, tc.id)
			}
			if tc.gvkKind != "" {
				gvk := gvkExtension(t, op.Extensions)
				if len(gvk) != 1 || gvk[0]["kind"] != tc.gvkKind {
					t.Errorf("%s = %v, want %s", extensionGVK, gvk, tc.gvkKind)
				}
			}
			params := map[string]*spec3.Parameter{}
			for _, p := range append(append([]*spec3.Parameter{}, item.Parameters...), op.Parameters...) {
				params[p.Name] = p
			}
			for _, name := range tc.params {
				p, ok := params[name]
				if !ok {
					t.Errorf("parameter %q missing", name)
				} else if p.Schema == nil || len(p.Schema.Type) != 1 {
					t.Errorf("parameter %q has no type", name)
				}
			}
			for _, name := range tc.absent {
				if _, ok := params[name]; ok {
					t.Errorf("parameter %q present, want absent", name)
				}
			}
			switch {
			case tc.body == "" && op.RequestBody != nil:
				t.Errorf("unexpected request body")
			case tc.body != "":
				if op.RequestBody == nil {
					t.Fatalf("no request body")
				}
				var types []string
				for mt, c := range op.RequestBody.Content {
					types = append(types, mt)
					if refName(c.Schema.Ref) != tc.body {
						t.Errorf("request body %s = %s, want %s", mt, c.Schema.Ref.String(), tc.body)
					}
				}
				sort.Strings(types)
				if tc.consumes != nil && !reflect.DeepEqual(types, tc.consumes) {
					t.Errorf("request body media types = %v, want %v", types, tc.consumes)
				}
			}
			resp := op.Responses.StatusCodeResponses[http.StatusOK]
			if resp == nil || resp.Content["application/json"] == nil {
				t.Fatalf("no application/json 200 response")
			}
			s := resp.Content["application/json"].Schema
			got := refName(s.Ref)
			if got == "" && len(s.Type) == 1 {
				got = s.Type[0]
			}
			if got != tc.response {
				t.Errorf("200 response = %q, want %q", got, tc.response)
			}
		})
	}
}

// collectRefs returns every "$ref" in a JSON document.
func collectRefs(v any, out map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && k == "$ref" {
				out[s] = true
			}
			collectRefs(e, out)
		}
	case []any:
		for _, e := range v {
			collectRefs(e, out)
		}
	}
}

func TestDocumentsAreComplete(t *testing.T) {
	d := newTestDocuments(t)
	sw, raw := v2Doc(t, d)

	// Every reference resolves.
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		t.Fatal(err)
	}
	refs := map[string]bool{}
	collectRefs(tree, refs)
	for ref := range refs {
		name := ref[strings.LastIndex(ref, "/")+1:]
		_, def := sw.Definitions[name]
		_, par := sw.Parameters[name]
		if !(strings.HasPrefix(ref, "#/definitions/") && def) && !(strings.HasPrefix(ref, "#/parameters/") && par) {
			t.Errorf("v2: dangling reference %s", ref)
		}
	}
	for key, doc := range v3Docs(t, d) {
		raw, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		var tree any
		_ = json.Unmarshal(raw, &tree)
		refs := map[string]bool{}
		collectRefs(tree, refs)
		for ref := range refs {
			name := strings.TrimPrefix(ref, "#/components/schemas/")
			if _, ok := doc.Components.Schemas[name]; !ok || name == ref {
				t.Errorf("v3 %s: dangling reference %s", key, ref)
			}
		}
	}

	// Exactly the served paths: nothing of kinds kedge does not serve.
	var paths []string
	for p := range sw.Paths.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	want := []string{
		"/api/", "/api/v1/", "/api/v1/events", "/api/v1/namespaces",
		"/api/v1/namespaces/{namespace}/events", "/api/v1/namespaces/{namespace}/events/{name}",
		"/api/v1/namespaces/{namespace}/pods", "/api/v1/namespaces/{namespace}/pods/{name}",
		"/api/v1/namespaces/{namespace}/pods/{name}/binding", "/api/v1/namespaces/{namespace}/pods/{name}/log",
		"/api/v1/namespaces/{namespace}/pods/{name}/status", "/api/v1/namespaces/{name}",
		"/api/v1/namespaces/{name}/finalize", "/api/v1/namespaces/{name}/status",
		"/api/v1/nodes", "/api/v1/nodes/{name}", "/api/v1/nodes/{name}/status", "/api/v1/pods",
		"/api/v1/watch/events", "/api/v1/watch/namespaces",
		"/api/v1/watch/namespaces/{namespace}/events", "/api/v1/watch/namespaces/{namespace}/events/{name}",
		"/api/v1/watch/namespaces/{namespace}/pods", "/api/v1/watch/namespaces/{namespace}/pods/{name}",
		"/api/v1/watch/namespaces/{name}", "/api/v1/watch/nodes", "/api/v1/watch/nodes/{name}",
		"/api/v1/watch/pods", "/apis/", "/version/",
	}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("v2 paths:\n got %q\nwant %q", paths, want)
	}
	for _, absent := range []string{"io.k8s.api.core.v1.Service", "io.k8s.api.core.v1.ConfigMap"} {
		if _, ok := sw.Definitions[absent]; ok {
			t.Errorf("v2 defines %s, which no served route uses", absent)
		}
	}
	if sw.Info.Title != "Kubernetes" || sw.Info.Version != "v1.34.2" {
		t.Errorf("v2 info = %+v", sw.Info.InfoProps)
	}
	if _, ok := sw.SecurityDefinitions["BearerToken"]; !ok {
		t.Errorf("v2 has no BearerToken security definition")
	}
}

func TestDefinitions(t *testing.T) {
	d := newTestDocuments(t)
	sw, _ := v2Doc(t, d)
	v3 := v3Docs(t, d)["api/v1"]
	cases := []struct {
		name string
		gvks []map[string]string // nil: no extension
	}{
		{"io.k8s.api.core.v1.Pod", []map[string]string{{"group": "", "version": "v1", "kind": "Pod"}}},
		{"io.k8s.api.core.v1.PodList", []map[string]string{{"group": "", "version": "v1", "kind": "PodList"}}},
		{"io.k8s.api.core.v1.Binding", []map[string]string{{"group": "", "version": "v1", "kind": "Binding"}}},
		{"io.k8s.api.core.v1.Namespace", []map[string]string{{"group": "", "version": "v1", "kind": "Namespace"}}},
		{"io.k8s.api.core.v1.Node", []map[string]string{{"group": "", "version": "v1", "kind": "Node"}}},
		{"io.k8s.api.core.v1.Event", []map[string]string{{"group": "", "version": "v1", "kind": "Event"}}},
		{"io.k8s.apimachinery.pkg.apis.meta.v1.Status", []map[string]string{{"group": "", "version": "v1", "kind": "Status"}}},
		{"io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions", []map[string]string{{"group": "", "version": "v1", "kind": "DeleteOptions"}}},
		{"io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent", []map[string]string{{"group": "", "version": "v1", "kind": "WatchEvent"}}},
		{"io.k8s.api.core.v1.PodSpec", nil},
		{"io.k8s.api.core.v1.ResourceRequirements", nil},
		{"io.k8s.apimachinery.pkg.api.resource.Quantity", nil},
		{"io.k8s.apimachinery.pkg.util.intstr.IntOrString", nil},
		{"io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			def, ok := sw.Definitions[tc.name]
			if !ok {
				t.Fatalf("v2: no definition %s", tc.name)
			}
			if got := gvkExtension(t, def.Extensions); !reflect.DeepEqual(got, tc.gvks) {
				t.Errorf("v2 %s = %v, want %v", extensionGVK, got, tc.gvks)
			}
			schema, ok := v3.Components.Schemas[tc.name]
			if !ok {
				t.Fatalf("v3: no schema %s", tc.name)
			}
			if got := gvkExtension(t, schema.Extensions); !reflect.DeepEqual(got, tc.gvks) {
				t.Errorf("v3 %s = %v, want %v", extensionGVK, got, tc.gvks)
			}
		})
	}

	// The schemas are the generated ones: PodSpec requires containers, and
	// resources are maps of quantities.
	podSpec := sw.Definitions["io.k8s.api.core.v1.PodSpec"]
	if !slices.Contains(podSpec.Required, "containers") {
		t.Errorf("PodSpec.required = %v, want containers in it", podSpec.Required)
	}
	limits := sw.Definitions["io.k8s.api.core.v1.ResourceRequirements"].Properties["limits"]
	if limits.AdditionalProperties == nil || refName(limits.AdditionalProperties.Schema.Ref) != "io.k8s.apimachinery.pkg.api.resource.Quantity" {
		t.Errorf("ResourceRequirements.limits = %+v, want a map of Quantity", limits)
	}
	// v2 drops defaults, as kube-apiserver; v3 keeps them.
	if d := sw.Definitions["io.k8s.api.core.v1.Pod"].Properties["metadata"].Default; d != nil {
		t.Errorf("v2 Pod.metadata has default %v, want pruned", d)
	}
	if d := v3.Components.Schemas["io.k8s.api.core.v1.Pod"].Properties["metadata"].Default; d == nil {
		t.Errorf("v3 Pod.metadata has no default, want the generated {}")
	}
}

// TestOtherGroup adds a kind of a named group (standing in for apps/v1 with
// a package that is generated) and checks its documents and names.
func TestOtherGroup(t *testing.T) {
	cfg := testConfig()
	cfg.Resources = append(cfg.Resources, Resource{
		Group: "example.kedge.dev", Version: "v1alpha1", Kind: "ConfigMap", Plural: "configmaps", Namespaced: true,
		Verbs: []string{VerbGet, VerbPatch}, GoPackage: "k8s.io/api/core/v1",
	})
	d, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	docs := v3Docs(t, d)
	for _, key := range []string{"api", "api/v1", "apis", "apis/example.kedge.dev", "apis/example.kedge.dev/v1alpha1", "version"} {
		if docs[key] == nil {
			t.Errorf("no v3 document %q", key)
		}
	}
	doc := docs["apis/example.kedge.dev/v1alpha1"]
	if doc == nil {
		t.FailNow()
	}
	item := doc.Paths.Paths["/apis/example.kedge.dev/v1alpha1/namespaces/{namespace}/configmaps/{name}"]
	if item == nil || item.Patch == nil {
		t.Fatalf("no PATCH of configmaps in the group's document")
	}
	if item.Patch.OperationId != "patchExampleKedgeDevV1alpha1NamespacedConfigMap" {
		t.Errorf("operationId = %q", item.Patch.OperationId)
	}
	if got := gvkExtension(t, doc.Components.Schemas["io.k8s.api.core.v1.ConfigMap"].Extensions); !reflect.DeepEqual(got,
		[]map[string]string{{"group": "example.kedge.dev", "version": "v1alpha1", "kind": "ConfigMap"}}) {
		t.Errorf("ConfigMap %s = %v", extensionGVK, got)
	}
	if _, ok := docs["api/v1"].Paths.Paths["/apis/example.kedge.dev/v1alpha1/namespaces/{namespace}/configmaps/{name}"]; ok {
		t.Errorf("the api/v1 document holds another group's path")
	}
	if g := docs["apis/example.kedge.dev"].Paths.Paths["/apis/example.kedge.dev/"]; g == nil || g.Get.OperationId != "getExampleKedgeDevAPIGroup" {
		t.Errorf("group discovery path missing or misnamed: %+v", g)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	pod := func(mod func(*Resource)) Config {
		cfg := DefaultConfig()
		r := Resource{Version: "v1", Kind: "Pod", Plural: "pods", Namespaced: true, Verbs: []string{VerbGet}}
		mod(&r)
		cfg.Resources = []Resource{r}
		return cfg
	}
	cases := []struct {
		name string
		cfg  Config
		msg  string
	}{
		{"no resources", DefaultConfig(), "no resources"},
		{"zero config", Config{Resources: testResources()}, "Title and Version"},
		{"unknown verb", pod(func(r *Resource) { r.Verbs = []string{"explode"} }), `unknown verb "explode"`},
		{"unknown subresource", pod(func(r *Resource) { r.Subresources = []string{"scale"} }), `unknown subresource "scale"`},
		{"missing plural", pod(func(r *Resource) { r.Plural = "" }), "Plural"},
		{"slash in plural", pod(func(r *Resource) { r.Plural = "pods/x" }), "must not contain"},
		{"kind without definition", pod(func(r *Resource) { r.Group, r.Kind, r.Plural = "apps", "Deployment", "deployments" }), "k8s.io/api/apps/v1 to the go:generate line"},
		{"list without list definition", pod(func(r *Resource) { r.Kind, r.Verbs = "Binding", []string{VerbList} }), "k8s.io/api/core/v1.BindingList"},
	}
	dup := DefaultConfig()
	dup.Resources = append(testResources(), testResources()[0])
	cases = append(cases, struct {
		name string
		cfg  Config
		msg  string
	}{"duplicate", dup, "listed twice"})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(tc.cfg)
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Build: %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
		})
	}
}

// TestDeterministic builds one config twice: the bundles must be the same
// bytes, so go generate leaves a current bundle untouched.
func TestDeterministic(t *testing.T) {
	ai, ad, err := newTestDocuments(t).MarshalBundle()
	if err != nil {
		t.Fatal(err)
	}
	bi, bd, err := newTestDocuments(t).MarshalBundle()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ai, bi) || !bytes.Equal(ad, bd) {
		t.Errorf("two builds of one config differ:\n%s\n%s", ai, bi)
	}
}

func TestOperationID(t *testing.T) {
	cases := []struct {
		op, path, id string
		tags         []string
	}{
		{"patchNamespacedPod", "/api/v1/namespaces/{namespace}/pods/{name}", "patchCoreV1NamespacedPod", []string{"core_v1"}},
		{"deletecollectionNamespacedPod", "/api/v1/namespaces/{namespace}/pods", "deletecollectionCoreV1NamespacedPod", []string{"core_v1"}},
		{"readNamespaceStatus", "/api/v1/namespaces/{name}/status", "readCoreV1NamespaceStatus", []string{"core_v1"}},
		{"listDeploymentForAllNamespaces", "/apis/apps/v1/deployments", "listAppsV1DeploymentForAllNamespaces", []string{"apps_v1"}},
		{"replaceClusterRole", "/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}", "replaceRbacAuthorizationV1ClusterRole", []string{"rbacAuthorization_v1"}},
		{"getAPIGroup", "/apis/apps/", "getAppsAPIGroup", []string{"apps"}},
		{"getAPIVersions", "/api/", "getCoreAPIVersions", []string{"core"}},
		{"getAPIVersions", "/apis/", "getAPIVersions", []string{"apis"}},
		{"getAPIResources", "/apis/batch/v1/", "getBatchV1APIResources", []string{"batch_v1"}},
	}
	for _, tc := range cases {
		id, tags := operationID(tc.op, tc.path)
		if id != tc.id || !reflect.DeepEqual(tags, tc.tags) {
			t.Errorf("operationID(%q, %q) = %q %v, want %q %v", tc.op, tc.path, id, tags, tc.id, tc.tags)
		}
	}
}

package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
)

func TestAuthentication(t *testing.T) {
	env := newTestEnv(t)
	tests := []struct {
		name   string
		path   string
		header string
		code   int
	}{
		{"healthz open", "/healthz", "", 200},
		{"livez open", "/livez", "", 200},
		{"readyz open", "/readyz", "", 200},
		{"version open", "/version", "", 200},
		{"no token", "/api/v1/pods", "", 401},
		{"bad token", "/api/v1/pods", "Bearer nope", 401},
		{"basic auth", "/api/v1/pods", "Basic dGVzdDp0ZXN0", 401},
		{"good token", "/api/v1/pods", "Bearer " + testToken, 200},
		{"discovery needs token", "/api", "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", env.http.URL+tt.path, nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Fatalf("code %d, want %d", resp.StatusCode, tt.code)
			}
			if tt.code == 401 {
				var st metav1.Status
				if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
					t.Fatal(err)
				}
				if st.Kind != "Status" || st.APIVersion != "v1" || st.Reason != metav1.StatusReasonUnauthorized || st.Code != 401 {
					t.Fatalf("status %+v", st)
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	env := newTestEnv(t)
	var v map[string]string
	env.mustDo(200, "GET", "/version", "").into(t, &v)
	if v["gitVersion"] != "v1.34.2+kedge" || v["major"] != "1" {
		t.Fatalf("version %v", v)
	}
}

func TestDiscoveryDocuments(t *testing.T) {
	env := newTestEnv(t)
	var versions metav1.APIVersions
	env.mustDo(200, "GET", "/api", "").into(t, &versions)
	if versions.Kind != "APIVersions" || len(versions.Versions) != 1 || versions.Versions[0] != "v1" {
		t.Fatalf("/api: %+v", versions)
	}

	var list metav1.APIResourceList
	env.mustDo(200, "GET", "/api/v1", "").into(t, &list)
	got := map[string]metav1.APIResource{}
	for _, r := range list.APIResources {
		got[r.Name] = r
	}
	for _, want := range []struct {
		name, kind string
		verbs      string
	}{
		{"pods", "Pod", ""},
		{"pods/status", "Pod", "get,patch,update"},
		{"pods/log", "Pod", "get"},
		{"pods/binding", "Binding", "create"},
		{"namespaces", "Namespace", ""},
		{"namespaces/status", "Namespace", "get,patch,update"},
		{"namespaces/finalize", "Namespace", "update"},
		{"nodes/status", "Node", "get,patch,update"},
	} {
		r, ok := got[want.name]
		if !ok {
			t.Errorf("/api/v1 lacks %s", want.name)
			continue
		}
		if r.Kind != want.kind || (want.verbs != "" && strings.Join(r.Verbs, ",") != want.verbs) {
			t.Errorf("%s: kind %s verbs %v", want.name, r.Kind, r.Verbs)
		}
	}
	if !got["pods"].Namespaced || got["nodes"].Namespaced || got["pods"].SingularName != "pod" {
		t.Errorf("scope/singular wrong: %+v %+v", got["pods"], got["nodes"])
	}

	r := env.mustDo(200, "GET", "/apis", "")
	if !strings.Contains(string(r.body), `"kind":"APIGroupList"`) || !strings.Contains(string(r.body), `"groups":[]`) {
		t.Fatalf("/apis: %s", r.body)
	}
	env.mustDo(404, "GET", "/apis/apps/v1", "").status(t)
	env.mustDo(404, "GET", "/api/v1/foos", "").status(t)
	env.mustDo(404, "GET", "/nope", "").status(t)
}

func TestAggregatedDiscovery(t *testing.T) {
	env := newTestEnv(t)
	for _, v := range []string{"v2", "v2beta1"} {
		accept := "application/json;g=apidiscovery.k8s.io;v=" + v + ";as=APIGroupDiscoveryList,application/json"
		for _, path := range []string{"/api", "/apis"} {
			r := env.mustDo(200, "GET", path, "", "Accept", accept)
			want := "application/json;g=apidiscovery.k8s.io;v=" + v + ";as=APIGroupDiscoveryList"
			if ct := r.header.Get("Content-Type"); ct != want {
				t.Fatalf("%s %s: content type %q", v, path, ct)
			}
			var list apidiscoveryv2.APIGroupDiscoveryList
			r.into(t, &list)
			if list.APIVersion != "apidiscovery.k8s.io/"+v || list.Kind != "APIGroupDiscoveryList" {
				t.Fatalf("%s %s: %s", v, path, r.body)
			}
			if path == "/apis" {
				if len(list.Items) != 0 {
					t.Fatalf("/apis has groups: %s", r.body)
				}
				continue
			}
			if len(list.Items) != 1 || list.Items[0].Name != "" || list.Items[0].Versions[0].Version != "v1" {
				t.Fatalf("/api: %s", r.body)
			}
			var pods *apidiscoveryv2.APIResourceDiscovery
			for i, res := range list.Items[0].Versions[0].Resources {
				if res.Resource == "pods" {
					pods = &list.Items[0].Versions[0].Resources[i]
				}
			}
			if pods == nil || pods.Scope != apidiscoveryv2.ScopeNamespace || pods.ResponseKind.Kind != "Pod" || len(pods.Subresources) != 6 {
				t.Fatalf("pods discovery: %+v", pods)
			}
		}
	}
}

// TestDiscoveryClient runs client-go's discovery (aggregated, as kubectl
// does) and checks it reports no failed group versions.
func TestDiscoveryClient(t *testing.T) {
	env := newTestEnv(t)
	dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: env.http.URL, BearerToken: testToken})
	if err != nil {
		t.Fatal(err)
	}
	groups, resources, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if len(groups) != 1 || groups[0].Name != "" {
		t.Fatalf("groups %+v", groups)
	}
	names := map[string]bool{}
	for _, rl := range resources {
		for _, r := range rl.APIResources {
			names[r.Name] = true
		}
	}
	for _, n := range []string{"pods", "pods/log", "pods/binding", "namespaces/finalize", "nodes", "events"} {
		if !names[n] {
			t.Errorf("client-go discovery lacks %s (%v)", n, names)
		}
	}
	sv, err := dc.ServerVersion()
	if err != nil || sv.GitVersion != "v1.34.2+kedge" {
		t.Fatalf("server version %v %v", sv, err)
	}
}

package builder

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kedge.dev/kedge/server/openapi"
)

// kubectlDir holds the kubectl releases of the project's machines and CI.
const kubectlDir = "/usr/lib/google-cloud-sdk/bin"

// fakeAPIServer serves the documents beside a minimal hard-coded discovery
// (what kubectl needs to map "pod" to /api/v1 pods) and a POST of pods that
// echoes the body, recording every request.
type fakeAPIServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recordedRequest
}

type recordedRequest struct {
	method, path, query, accept string
}

func newFakeAPIServer(t testing.TB, docs *openapi.Documents) *fakeAPIServer {
	t.Helper()
	f := &fakeAPIServer{}
	writeJSON := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	resources := &metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: "v1",
	}
	all := metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	for _, r := range testResources() {
		resources.APIResources = append(resources.APIResources, metav1.APIResource{
			Name: r.Plural, SingularName: strings.ToLower(r.Kind), Namespaced: r.Namespaced, Kind: r.Kind, Verbs: all,
		})
		for _, s := range r.Subresources {
			resources.APIResources = append(resources.APIResources, metav1.APIResource{
				Name: r.Plural + "/" + s, Namespaced: r.Namespaced, Kind: r.Kind, Verbs: metav1.Verbs{"get"},
			})
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/openapi/", docs)
	mux.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, &metav1.APIVersions{
			TypeMeta: metav1.TypeMeta{Kind: "APIVersions"},
			Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{
				{ClientCIDR: "0.0.0.0/0", ServerAddress: strings.TrimPrefix(f.URL, "http://")},
			},
		})
	})
	mux.HandleFunc("/api/v1", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, resources) })
	mux.HandleFunc("/apis", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}})
	})
	mux.HandleFunc("POST /api/v1/namespaces/default/pods", func(w http.ResponseWriter, r *http.Request) {
		var obj map[string]any
		if err := json.NewDecoder(r.Body).Decode(&obj); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": err.Error(), "code": 400})
			return
		}
		writeJSON(w, http.StatusCreated, obj)
	})
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, recordedRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Accept")})
		f.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// reset forgets the requests recorded so far.
func (f *fakeAPIServer) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = nil
}

// find returns the recorded requests for which match is true.
func (f *fakeAPIServer) find(match func(recordedRequest) bool) []recordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []recordedRequest
	for _, r := range f.requests {
		if match(r) {
			out = append(out, r)
		}
	}
	return out
}

// kubectl runs one kubectl release against the server with its own empty
// kubeconfig, home and cache, and returns its combined output.
func kubectl(t *testing.T, bin, server string, stdin string, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	full := append([]string{"--kubeconfig", kubeconfig, "--server", server, "--token", "test", "--cache-dir", filepath.Join(dir, "cache")}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = []string{"HOME=" + dir, "PATH=/usr/bin:/bin"}
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// TestKubectl runs the real kubectl, oldest and newest supported release,
// against the documents: explain through the v3 documents (the default) and
// the v2 protobuf document, and create with --validate=strict, which kubectl
// turns into server-side field validation only when the v3 document shows
// fieldValidation on the kind's PATCH.
func TestKubectl(t *testing.T) {
	docs, err := Build(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	srv := newFakeAPIServer(t, docs)
	for _, release := range []string{"1.27", "1.32"} {
		bin := filepath.Join(kubectlDir, "kubectl."+release)
		t.Run(release, func(t *testing.T) {
			if _, err := os.Stat(bin); err != nil {
				t.Fatalf("kubectl %s is required (the project's machines and CI have it at %s): %v", release, bin, err)
			}
			explain := []struct {
				args []string
				want []string
				v2   bool
			}{
				{
					args: []string{"explain", "pod.spec"},
					want: []string{"KIND:       Pod", "FIELD: spec <PodSpec>", "PodSpec is a description of a pod.", "containers\t<[]Container> -required-", "restartPolicy\t<string>"},
				},
				{
					args: []string{"explain", "pod.spec.containers.resources"},
					want: []string{"KIND:       Pod", "FIELD: resources <ResourceRequirements>", "ResourceRequirements describes the compute resource requirements.", "limits\t<map[string]Quantity>", "requests\t<map[string]Quantity>"},
				},
				{
					args: []string{"explain", "pod.spec", "--output", "plaintext-openapiv2"},
					want: []string{"KIND:     Pod", "RESOURCE: spec <Object>", "PodSpec is a description of a pod.", "containers\t<[]Object> -required-"},
					v2:   true,
				},
				{
					args: []string{"explain", "pod.spec.containers.resources", "--output", "plaintext-openapiv2"},
					want: []string{"KIND:     Pod", "RESOURCE: resources <Object>", "ResourceRequirements describes the compute resource requirements.", "limits\t<map[string]string>"},
					v2:   true,
				},
			}
			for _, tc := range explain {
				srv.reset()
				out := kubectl(t, bin, srv.URL, "", tc.args...)
				for _, w := range tc.want {
					if !strings.Contains(out, w) {
						t.Errorf("kubectl %s: output lacks %q:\n%s", strings.Join(tc.args, " "), w, out)
					}
				}
				// The answer must come from the document asked for: the v2
				// protobuf, or the api/v1 v3 document.
				want := func(r recordedRequest) bool { return r.path == "/openapi/v3/api/v1" }
				if tc.v2 {
					want = func(r recordedRequest) bool {
						return r.path == "/openapi/v2" && strings.Contains(r.accept, "protobuf")
					}
				}
				if len(srv.find(want)) == 0 {
					t.Errorf("kubectl %s did not fetch the expected OpenAPI document; requests: %+v", strings.Join(tc.args, " "), srv.find(func(recordedRequest) bool { return true }))
				}
			}

			// kubectl sends fieldValidation=Strict whatever the server says;
			// what the documents decide is whether kubectl first validates
			// the manifest itself. A manifest with an unknown field tells:
			// kubectl rejects it locally unless the v3 document shows
			// fieldValidation on the Pod PATCH, and sends it otherwise (the
			// fake server takes anything).
			for _, directive := range []string{"strict", "warn"} {
				srv.reset()
				manifest := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"default"},"spec":{"bogusField":1,"containers":[{"name":"c","image":"busybox"}]}}`
				out := kubectl(t, bin, srv.URL, manifest, "create", "--validate="+directive, "-f", "-")
				if !strings.Contains(out, "pod/web created") {
					t.Errorf("kubectl create --validate=%s: want the request sent to the server, got:\n%s", directive, out)
				}
				if strings.Contains(strings.ToLower(out), "warn") {
					t.Errorf("kubectl create --validate=%s warned:\n%s", directive, out)
				}
				posts := srv.find(func(r recordedRequest) bool { return r.method == http.MethodPost })
				if len(posts) != 1 || !strings.Contains(posts[0].query, "fieldValidation="+strings.ToUpper(directive[:1])+directive[1:]) {
					t.Errorf("kubectl create --validate=%s: POSTs %+v, want one with fieldValidation", directive, posts)
				}
			}
		})
	}
}

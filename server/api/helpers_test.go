package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"

	"kedge.dev/kedge/server/registry"
)

const testToken = "test-token"

// tokenAuth accepts one token.
type tokenAuth struct{ token string }

func (a tokenAuth) AuthenticateToken(_ context.Context, token string) (User, bool) {
	if token != a.token {
		return User{}, false
	}
	return User{Name: "admin", Groups: []string{"system:masters"}}, true
}

// testEnv is a Server over a memStore behind httptest, with a fake
// kubelet for pods/log.
type testEnv struct {
	t       testing.TB
	srv     *Server
	store   *memStore
	http    *httptest.Server
	kubelet *httptest.Server
	now     time.Time
}

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newTestEnv(t testing.TB, mutate ...func(*Config)) *testEnv {
	t.Helper()
	env := &testEnv{t: t, store: newMemStore(), now: testNow}
	env.kubelet = httptest.NewServer(http.HandlerFunc(fakeKubelet))
	t.Cleanup(env.kubelet.Close)
	cfg := DefaultConfig()
	cfg.Store = env.store
	cfg.Resources = registry.CoreWithClock(func() time.Time { return testNow })
	cfg.Authenticator = tokenAuth{testToken}
	cfg.Version = version.Info{Major: "1", Minor: "34", GitVersion: "v1.34.2+kedge", Platform: "linux/amd64"}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Now = func() time.Time { return testNow }
	cfg.NodeProxy.Client = env.kubelet.Client()
	cfg.NodeProxy.Token = "node-token"
	cfg.NodeProxy.BaseURL = func(*corev1.Node) (*url.URL, error) { return url.Parse(env.kubelet.URL) }
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	env.srv = srv
	env.http = httptest.NewServer(srv)
	t.Cleanup(func() {
		_ = srv.Close()
		env.http.Close()
	})
	return env
}

// response is a finished HTTP exchange.
type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) status(t testing.TB) metav1.Status {
	t.Helper()
	var st metav1.Status
	if err := json.Unmarshal(r.body, &st); err != nil || st.Kind != "Status" {
		t.Fatalf("body is not a Status (%v): %s", err, r.body)
	}
	return st
}

func (r response) into(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, r.body)
	}
}

// do sends one request with the test token; headers come in pairs.
func (e *testEnv) do(method, path, body string, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.http.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: data}
}

// mustDo is do that fails the test on an unexpected code.
func (e *testEnv) mustDo(code int, method, path, body string, headers ...string) response {
	e.t.Helper()
	r := e.do(method, path, body, headers...)
	if r.code != code {
		e.t.Fatalf("%s %s: got %d, want %d: %s", method, path, r.code, code, r.body)
	}
	return r
}

func (e *testEnv) createNamespace(name string) {
	e.t.Helper()
	e.mustDo(201, "POST", "/api/v1/namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"`+name+`"}}`)
}

func podJSON(name string, labels string, extraSpec string) string {
	if labels == "" {
		labels = "{}"
	}
	if extraSpec != "" {
		extraSpec = "," + extraSpec
	}
	return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"` + name + `","labels":` + labels + `},` +
		`"spec":{"containers":[{"name":"c","image":"busybox"}]` + extraSpec + `}}`
}

func (e *testEnv) createPod(ns, name, labels, extraSpec string) corev1.Pod {
	e.t.Helper()
	var p corev1.Pod
	e.mustDo(201, "POST", "/api/v1/namespaces/"+ns+"/pods", podJSON(name, labels, extraSpec)).into(e.t, &p)
	return p
}

// fakeKubelet serves containerLogs like a kubelet: two lines, or an error
// for container "waiting", and checks the node token.
func fakeKubelet(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer node-token" {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/containerLogs/"), "/")
	if len(parts) != 3 {
		http.NotFound(w, r)
		return
	}
	if parts[2] == "waiting" {
		http.Error(w, "container \"waiting\" in pod \""+parts[1]+"\" is waiting to start: ContainerCreating", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "log of "+strings.Join(parts, "/")+" query="+r.URL.RawQuery+"\n")
	if r.URL.Query().Get("follow") == "true" {
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "second line\n")
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func ptr[T any](v T) *T { return &v }

package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// goodPod is bound to a node that does not exist, so neither the scheduler
// nor an agent ever writes to it: any change of its resourceVersion during
// TestBadInput comes from a request that should have been rejected.
const goodPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"keep"},"spec":{"nodeName":"parked","containers":[{"name":"c","image":"registry.k8s.io/busybox","command":["sleep","3600"]}]}}`

// TestBadInput sends each kind of bad input through kubectl and raw HTTP
// and checks the Kubernetes-shaped answer and that nothing stored changed.
func TestBadInput(t *testing.T) {
	s := newServer(t)
	c := s.raw()
	ns := "bad"
	s.kubectl("1.32", "create", "namespace", ns)
	if code, b := c.do(t, "POST", "/api/v1/namespaces/bad/pods", "application/json", goodPod); code != 201 {
		t.Fatalf("create good pod: %d %s", code, b)
	}
	// No agent will ever finish a graceful deletion on node "parked".
	t.Cleanup(func() { s.kubectlErr("1.32", "delete", "pod", "keep", "-n", ns, "--force", "--grace-period=0") })
	before := s.kubectl("1.32", "get", "pod", "keep", "-n", ns, "-o", "jsonpath={.metadata.resourceVersion}")

	tests := []struct {
		name, method, path, ctype, body string
		code                            int
		reason                          string
		want                            string // in the message
		field                           string // a cause's field, if any
	}{
		{"malformed JSON", "POST", "/api/v1/namespaces/bad/pods", "application/json", `{"apiVersion":"v1","kind":"Pod",`, 400, "BadRequest", "", ""},
		{"malformed YAML", "POST", "/api/v1/namespaces/bad/pods", "application/yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [x\n", 400, "BadRequest", "", ""},
		{"unknown resource", "POST", "/api/v1/namespaces/bad/widgets", "application/json", `{"apiVersion":"v1","kind":"Widget","metadata":{"name":"w"}}`, 404, "NotFound", "", ""},
		{"wrong apiVersion", "POST", "/apis/example.com/v9/namespaces/bad/pods", "application/json", goodPod, 404, "NotFound", "", ""},
		{"kind does not match URL", "POST", "/api/v1/namespaces/bad/pods", "application/json", `{"apiVersion":"v1","kind":"Node","metadata":{"name":"x"}}`, 400, "BadRequest", "", ""},
		{"missing containers", "POST", "/api/v1/namespaces/bad/pods", "application/json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"empty"},"spec":{}}`, 422, "Invalid", "Required value", "spec.containers"},
		{"missing image", "POST", "/api/v1/namespaces/bad/pods", "application/json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"noimg"},"spec":{"containers":[{"name":"c"}]}}`, 422, "Invalid", "Required value", "spec.containers[0].image"},
		{"unknown field strict", "POST", "/api/v1/namespaces/bad/pods?fieldValidation=Strict", "application/json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"},"spec":{"containers":[{"name":"c","image":"i","imagePullPolice":"Never"}]}}`, 400, "BadRequest", `unknown field "spec.containers[0].imagePullPolice"`, ""},
		{"stale resourceVersion", "PUT", "/api/v1/namespaces/bad/pods/keep", "application/json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"keep","resourceVersion":"1"},"spec":{"nodeName":"parked","containers":[{"name":"c","image":"registry.k8s.io/busybox","command":["sleep","3600"]}]}}`, 409, "Conflict", "the object has been modified", ""},
		{"create existing", "POST", "/api/v1/namespaces/bad/pods", "application/json", goodPod, 409, "AlreadyExists", `pods "keep" already exists`, ""},
		{"missing namespace", "POST", "/api/v1/namespaces/nope/pods", "application/json", strings.Replace(goodPod, "keep", "other", 1), 404, "NotFound", `namespaces "nope" not found`, ""},
		{"immutable spec", "PATCH", "/api/v1/namespaces/bad/pods/keep", "application/merge-patch+json", `{"spec":{"restartPolicy":"Never"}}`, 422, "Invalid", "pod updates may not change fields", "spec"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, b := c.do(t, tc.method, tc.path, tc.ctype, tc.body)
			st := parseStatus(t, b)
			if code != tc.code || st.Code != tc.code || st.Reason != tc.reason {
				t.Fatalf("got %d %s (%s), want %d %s", code, st.Reason, st.Message, tc.code, tc.reason)
			}
			if st.Message == "" || !strings.Contains(st.Message, tc.want) {
				t.Errorf("message %q lacks %q", st.Message, tc.want)
			}
			if tc.field != "" {
				found := false
				if st.Details != nil {
					for _, cause := range st.Details.Causes {
						found = found || cause.Field == tc.field
					}
				}
				if !found {
					t.Errorf("no cause with field %q in %s", tc.field, b)
				}
			}
		})
	}
	if code, _ := (&rawClient{base: c.base, client: c.client}).do(t, "GET", "/api/v1/pods", "", ""); code != 401 {
		t.Errorf("request without a token got %d, want 401", code)
	}

	// The same mistakes through kubectl get an actionable message.
	kubectlCases := []struct {
		name, manifest, want string
	}{
		{"malformed yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n", "error"},
		{"unknown kind", "apiVersion: v1\nkind: Widget\nmetadata: {name: w}\n", `no matches for kind "Widget" in version "v1"`},
		{"wrong apiVersion", "apiVersion: v2\nkind: Pod\nmetadata: {name: w}\nspec: {containers: [{name: c, image: i}]}\n", `no matches for kind "Pod" in version "v2"`},
		{"missing field", "apiVersion: v1\nkind: Pod\nmetadata: {name: w}\nspec: {}\n", "spec.containers: Required value"},
		{"unknown field", "apiVersion: v1\nkind: Pod\nmetadata: {name: w}\nspec: {containers: [{name: c, image: i, imagePullPolice: Never}]}\n", `unknown field "spec.containers[0].imagePullPolice"`},
	}
	for _, v := range []string{"1.32", "1.27"} {
		for _, tc := range kubectlCases {
			t.Run("kubectl-"+v+"/"+tc.name, func(t *testing.T) {
				out, err := s.kubectlStdin(v, tc.manifest, "apply", "-n", ns, "-f", "-")
				if err == nil {
					t.Fatalf("kubectl accepted bad input:\n%s", out)
				}
				if !strings.Contains(out, tc.want) {
					t.Errorf("kubectl said %q, want it to contain %q", out, tc.want)
				}
			})
		}
	}
	after := s.kubectl("1.32", "get", "pod", "keep", "-n", ns, "-o", "jsonpath={.metadata.resourceVersion}")
	if before != after {
		t.Errorf("a rejected request changed the stored pod: resourceVersion %s -> %s", before, after)
	}
	if out := s.kubectl("1.32", "get", "pods", "-n", ns, "-o", "name"); strings.TrimSpace(out) != "pod/keep" {
		t.Errorf("rejected requests left objects behind: %s", out)
	}
}

// TestStartupErrors: an unwritable data dir or a busy port stop the server
// with one clear line, not a stack trace.
func TestStartupErrors(t *testing.T) {
	bin := binPath(t)
	base := t.TempDir()
	ro := filepath.Join(base, "ro")
	if err := os.MkdirAll(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	// Root ignores permission bits; a read-only bind mount is what stops it.
	if out, err := exec.Command("mount", "--bind", "-o", "ro", ro, ro).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "remount,bind,ro", ro).CombinedOutput(); err != nil {
		t.Fatalf("remount ro: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", ro).Run() })
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"data dir not writable", []string{"--data-dir", filepath.Join(ro, "data")}, "data dir"},
		{"port in use", []string{"--data-dir", filepath.Join(base, "d2"), "--listen", busy.Addr().String()}, "address already in use"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"server", "--run-dir", filepath.Join(base, "run"), "--kubelet-listen", "127.0.0.1:0", "--raft-listen", "127.0.0.1:0", "--advertise-address", "127.0.0.1"}, tc.args...)
			cmd := exec.Command(bin, args...)
			done := make(chan struct{})
			var out []byte
			go func() { out, _ = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatal("server kept running")
			}
			if cmd.ProcessState.ExitCode() == 0 {
				t.Fatalf("exit code 0:\n%s", out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "kedge: ") || !strings.Contains(last, tc.want) {
				t.Errorf("last line %q, want a 'kedge: ...%s...' line", last, tc.want)
			}
			if strings.Contains(string(out), "goroutine ") || strings.Contains(string(out), "panic") {
				t.Errorf("output has a stack trace:\n%s", out)
			}
		})
	}
}

const survivorPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"survivor"},"spec":{"containers":[{"name":"c","image":"registry.k8s.io/busybox","command":["sleep","3600"]}]}}`

// TestRestartKeepsObjects: everything stored survives a restart.
func TestRestartKeepsObjects(t *testing.T) {
	s := newServer(t)
	s.kubectl("1.32", "create", "namespace", "keepme")
	if out, err := s.kubectlStdin("1.32", survivorPod, "apply", "-n", "keepme", "-f", "-"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	waitPod(t, s, "1.32", "keepme", "survivor", "Running")
	uid := s.kubectl("1.32", "get", "pod", "survivor", "-n", "keepme", "-o", "jsonpath={.metadata.uid}")
	s.restart()
	if got := s.kubectl("1.32", "get", "pod", "survivor", "-n", "keepme", "-o", "jsonpath={.metadata.uid}"); got != uid {
		t.Fatalf("pod uid after restart %q, want %q", got, uid)
	}
	if out := s.kubectl("1.32", "get", "namespaces", "keepme", "--no-headers"); !strings.Contains(out, "Active") {
		t.Fatalf("namespace after restart: %s", out)
	}
	waitPod(t, s, "1.32", "keepme", "survivor", "Running")
	s.kubectl("1.32", "delete", "pod", "survivor", "-n", "keepme", "--grace-period=1", "--timeout=60s")
	assertNothingLeft(t, s, uid)
}

package api

import (
	"bytes"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// kubectlBinaries are the kubectl versions the machine (and CI) has.
func kubectlBinaries(t *testing.T) map[string]string {
	t.Helper()
	bins := map[string]string{}
	for _, v := range []string{"1.27", "1.30", "1.32", "1.33"} {
		p := "/usr/lib/google-cloud-sdk/bin/kubectl." + v
		if _, err := os.Stat(p); err == nil {
			bins[v] = p
		}
	}
	if len(bins) == 0 {
		// Loud on purpose: CI has these binaries; a machine without them
		// does not run this test.
		t.Skip("SKIPPED LOUDLY: no kubectl binaries in /usr/lib/google-cloud-sdk/bin; real-kubectl compatibility is not tested here")
	}
	return bins
}

// TestRealKubectl runs several kubectl versions against the server and
// checks their output and that they print no errors (discovery included).
func TestRealKubectl(t *testing.T) {
	for version, bin := range kubectlBinaries(t) {
		t.Run(version, func(t *testing.T) {
			env := newTestEnv(t)
			// kubectl sends bearer tokens over TLS only.
			ts := httptest.NewTLSServer(env.srv)
			t.Cleanup(ts.Close)
			cache := t.TempDir()
			kubeconfig := filepath.Join(cache, "config")
			cfg := "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster: {server: " + ts.URL + ", insecure-skip-tls-verify: true}\n" +
				"users:\n- name: u\n  user: {token: " + testToken + "}\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\ncurrent-context: c\n"
			if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			run := func(stdin string, args ...string) string {
				t.Helper()
				full := append([]string{"--cache-dir", filepath.Join(cache, "c")}, args...)
				cmd := exec.Command(bin, full...)
				cmd.Env = append(os.Environ(), "HOME="+cache, "KUBECONFIG="+kubeconfig)
				cmd.Stdin = strings.NewReader(stdin)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				if err := cmd.Run(); err != nil {
					t.Fatalf("kubectl %v: %v\nstdout: %s\nstderr: %s", args, err, stdout.String(), stderr.String())
				}
				if s := stderr.String(); s != "" {
					t.Fatalf("kubectl %v printed to stderr: %s", args, s)
				}
				return stdout.String()
			}
			out := run("", "api-resources")
			for _, want := range []string{"pods", "namespaces", "nodes", "events"} {
				if !strings.Contains(out, want) {
					t.Fatalf("api-resources lacks %s:\n%s", want, out)
				}
			}
			if out := run("", "get", "--raw", "/api/v1"); !strings.Contains(out, `"pods/log"`) {
				t.Fatalf("get --raw /api/v1: %s", out)
			}
			run("", "create", "namespace", "demo")
			run("", "-n", "demo", "run", "web", "--image=busybox", "--labels=app=web")
			run("apiVersion: v1\nkind: Pod\nmetadata:\n  name: db\n  labels: {app: db}\nspec:\n  containers:\n  - name: c\n    image: busybox\n",
				"-n", "demo", "create", "--validate=false", "-f", "-")
			out = run("", "get", "pods", "-A", "-l", "app=web")
			if !strings.Contains(out, "NAMESPACE") || !strings.Contains(out, "demo") || !strings.Contains(out, "web") || strings.Contains(out, "db") {
				t.Fatalf("get pods -A -l app=web:\n%s", out)
			}
			run("", "-n", "demo", "label", "pod", "db", "tier=backend")
			if out := run("", "-n", "demo", "get", "pod", "db", "-o", "jsonpath={.metadata.labels.tier}"); out != "backend" {
				t.Fatalf("label: %q", out)
			}
			if out := run("", "-n", "demo", "get", "pods", "--field-selector", "metadata.name=db", "-o", "name"); strings.TrimSpace(out) != "pod/db" {
				t.Fatalf("field selector: %q", out)
			}
			run("", "-n", "demo", "delete", "pod", "db")
			if out := run("", "-n", "demo", "get", "pods", "-o", "name"); strings.TrimSpace(out) != "pod/web" {
				t.Fatalf("after delete: %q", out)
			}
			run("", "delete", "namespace", "demo", "--wait=false")
			if out := run("", "get", "ns", "demo", "--no-headers"); !strings.Contains(out, "Terminating") {
				t.Fatalf("namespace after delete: %q", out)
			}
		})
	}
}

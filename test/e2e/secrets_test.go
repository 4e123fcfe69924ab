package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kedge.dev/kedge/runtime/pull/pulltest"
)

// kubectlEnv runs kubectl of minor version v with extra environment
// variables (KUBE_EDITOR for kubectl edit).
func (s *server) kubectlEnv(v string, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectlPath(v), append([]string{"--kubeconfig", s.kubecfg}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// b64 decodes a base64 value printed by kubectl, failing the test on error.
func b64(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		t.Fatalf("not base64: %q: %v", s, err)
	}
	return string(b)
}

// appliedSecret uses stringData, which the server merges into data and
// never stores; appliedConfigMap has a binaryData entry.
const appliedSecret = `apiVersion: v1
kind: Secret
metadata:
  name: applied
  labels: {app: demo}
stringData:
  token: TOKEN
data:
  kept: a2VwdA==
`

const appliedConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  app.properties: |
    level=LEVEL
binaryData:
  blob.bin: AAEC
`

// TestSecretsAndConfigMaps creates, lists, reads, edits and deletes secrets
// and config maps with kubectl 1.32 and 1.27 as a user would, checks that
// bad input gets Kubernetes' 422 with field paths and leaves the stored
// object alone, and that deleting a namespace deletes them.
func TestSecretsAndConfigMaps(t *testing.T) {
	s := newServer(t)
	for _, v := range []string{"1.32", "1.27"} {
		t.Run("kubectl-"+v, func(t *testing.T) { secretsStory(t, s, v) })
	}
	t.Run("bad-input", func(t *testing.T) { secretsBadInput(t, s) })
}

func secretsStory(t *testing.T, s *server, v string) {
	ns := "sec-" + strings.ReplaceAll(v, ".", "-")
	s.kubectl(v, "create", "namespace", ns)

	// Discovery and OpenAPI know both kinds.
	res := s.kubectl(v, "api-resources", "--api-group=")
	if !regexpLine(res, `^configmaps\s+cm\s+v1\s+true\s+ConfigMap$`) || !regexpLine(res, `^secrets\s+v1\s+true\s+Secret$`) {
		t.Errorf("api-resources:\n%s", res)
	}
	if out := s.kubectl(v, "explain", "secret.stringData"); !strings.Contains(out, "write-only") {
		t.Errorf("explain secret.stringData:\n%s", out)
	}

	// The kubectl create generators.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "secret", "generic", "app-creds", "--from-literal=user=alice", "--from-literal=password=s3cret"}, "secret/app-creds created"},
		{[]string{"create", "secret", "docker-registry", "regcred", "--docker-server=registry.example:5000", "--docker-username=bob", "--docker-password=hunter2"}, "secret/regcred created"},
		{[]string{"create", "secret", "tls", "web-tls", "--cert=" + filepath.Join(s.dataDir, "tls", "server.crt"), "--key=" + filepath.Join(s.dataDir, "tls", "server.key")}, "secret/web-tls created"},
		{[]string{"create", "configmap", "app", "--from-literal=mode=edge", "--from-literal=level=3"}, "configmap/app created"},
	} {
		if out := s.kubectl(v, append(tc.args, "-n", ns)...); !strings.Contains(out, tc.want) {
			t.Errorf("kubectl %s: %s", strings.Join(tc.args, " "), out)
		}
	}
	if out, err := s.kubectlStdin(v, appliedSecret+"---\n"+strings.Replace(appliedConfigMap, "LEVEL", "1", 1), "apply", "-n", ns, "-f", "-"); err != nil ||
		!strings.Contains(out, "secret/applied created") || !strings.Contains(out, "configmap/settings created") {
		t.Fatalf("apply: %v\n%s", err, out)
	}

	// Tables as Kubernetes prints them.
	out := s.kubectl(v, "get", "secrets", "-n", ns)
	if h := strings.Join(strings.Fields(strings.SplitN(out, "\n", 2)[0]), " "); h != "NAME TYPE DATA AGE" {
		t.Errorf("get secrets header %q:\n%s", h, out)
	}
	for _, re := range []string{`^app-creds\s+Opaque\s+2\s+\S+$`, `^regcred\s+kubernetes.io/dockerconfigjson\s+1\s+\S+$`,
		`^web-tls\s+kubernetes.io/tls\s+2\s+\S+$`, `^applied\s+Opaque\s+2\s+\S+$`} {
		if !regexpLine(out, re) {
			t.Errorf("get secrets lacks a row matching %s:\n%s", re, out)
		}
	}
	out = s.kubectl(v, "get", "cm", "-n", ns)
	if h := strings.Join(strings.Fields(strings.SplitN(out, "\n", 2)[0]), " "); h != "NAME DATA AGE" {
		t.Errorf("get configmaps header %q:\n%s", h, out)
	}
	if !regexpLine(out, `^app\s+2\s+\S+$`) || !regexpLine(out, `^settings\s+2\s+\S+$`) {
		t.Errorf("get configmaps rows:\n%s", out)
	}
	if out := s.kubectl(v, "get", "secrets", "-n", ns, "--field-selector", "type=kubernetes.io/dockerconfigjson", "-o", "name"); strings.TrimSpace(out) != "secret/regcred" {
		t.Errorf("fieldSelector type=kubernetes.io/dockerconfigjson: %q", out)
	}
	if out := s.kubectl(v, "get", "secrets", "-n", ns, "--field-selector", "type!=Opaque,metadata.name!=web-tls", "-o", "name"); strings.TrimSpace(out) != "secret/regcred" {
		t.Errorf("fieldSelector type!=Opaque,metadata.name!=web-tls: %q", out)
	}

	// Values round-trip; stringData is merged into data and not kept.
	if got := b64(t, s.kubectl(v, "get", "secret", "app-creds", "-n", ns, "-o", "jsonpath={.data.password}")); got != "s3cret" {
		t.Errorf("password = %q", got)
	}
	var dcj struct {
		Auths map[string]struct{ Username, Password, Auth string } `json:"auths"`
	}
	raw := b64(t, s.kubectl(v, "get", "secret", "regcred", "-n", ns, "-o", `jsonpath={.data.\.dockerconfigjson}`))
	if err := json.Unmarshal([]byte(raw), &dcj); err != nil || dcj.Auths["registry.example:5000"].Password != "hunter2" {
		t.Errorf(".dockerconfigjson = %s (%v)", raw, err)
	}
	// (kubectl itself keeps stringData in its last-applied annotation, as
	// with Kubernetes; the object has none.)
	yml := s.kubectl(v, "get", "secret", "applied", "-n", ns, "-o", "yaml")
	if regexpLine(yml, `^stringData:`) || !strings.Contains(yml, "token: VE9LRU4=") || !strings.Contains(yml, "kept: a2VwdA==") || !strings.Contains(yml, "type: Opaque") {
		t.Errorf("get secret -o yaml:\n%s", yml)
	}
	if got := s.kubectl(v, "get", "cm", "settings", "-n", ns, "-o", `jsonpath={.binaryData.blob\.bin}`); got != "AAEC" {
		t.Errorf("binaryData = %q", got)
	}

	// apply again: kubectl sends stringData again (the live object has
	// none) and says "configured", as with Kubernetes (kubernetes#87736),
	// but the merged object is the same, so nothing is written.
	rv := s.kubectl(v, "get", "secret", "applied", "-n", ns, "-o", "jsonpath={.metadata.resourceVersion}")
	if out, err := s.kubectlStdin(v, appliedSecret, "apply", "-n", ns, "-f", "-"); err != nil || !strings.Contains(out, "secret/applied configured") {
		t.Errorf("re-apply: %v\n%s", err, out)
	}
	if got := s.kubectl(v, "get", "secret", "applied", "-n", ns, "-o", "jsonpath={.metadata.resourceVersion}"); got != rv {
		t.Errorf("re-applying the same stringData wrote the secret: resourceVersion %s -> %s", rv, got)
	}
	// A config map applied again is unchanged.
	if out, err := s.kubectlStdin(v, strings.Replace(appliedConfigMap, "LEVEL", "1", 1), "apply", "-n", ns, "-f", "-"); err != nil || !strings.Contains(out, "configmap/settings unchanged") {
		t.Errorf("re-apply config map: %v\n%s", err, out)
	}
	if out, err := s.kubectlStdin(v, strings.Replace(appliedSecret, "TOKEN", "ROTATED", 1)+"---\n"+strings.Replace(appliedConfigMap, "LEVEL", "2", 1),
		"apply", "-n", ns, "-f", "-"); err != nil || !strings.Contains(out, "secret/applied configured") {
		t.Errorf("apply changed stringData: %v\n%s", err, out)
	}
	if got := b64(t, s.kubectl(v, "get", "secret", "applied", "-n", ns, "-o", "jsonpath={.data.token}")); got != "ROTATED" {
		t.Errorf("token after apply = %q", got)
	}
	if got := s.kubectl(v, "get", "cm", "settings", "-n", ns, "-o", `jsonpath={.data.app\.properties}`); got != "level=2\n" {
		t.Errorf("app.properties after apply = %q", got)
	}

	// describe shows sizes of secrets and values of config maps.
	desc := s.kubectl(v, "describe", "secret", "app-creds", "-n", ns)
	if !regexpLine(desc, `^Type:\s+Opaque$`) || !regexpLine(desc, `^password:\s+6 bytes$`) || !regexpLine(desc, `^user:\s+5 bytes$`) || strings.Contains(desc, "s3cret") {
		t.Errorf("describe secret:\n%s", desc)
	}
	desc = s.kubectl(v, "describe", "configmap", "app", "-n", ns)
	if !strings.Contains(desc, "mode:\n----\nedge") || !strings.Contains(desc, "level:\n----\n3") {
		t.Errorf("describe configmap:\n%s", desc)
	}

	// kubectl edit: the editor changes a value, kubectl patches it.
	editor := filepath.Join(t.TempDir(), "editor.sh")
	if err := os.WriteFile(editor, []byte("#!/bin/sh\nsed -i 's/^  mode: edge$/  mode: cloud/' \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := s.kubectlEnv(v, []string{"KUBE_EDITOR=" + editor}, "edit", "configmap", "app", "-n", ns); err != nil || !strings.Contains(out, "configmap/app edited") {
		t.Errorf("edit: %v\n%s", err, out)
	}
	if got := s.kubectl(v, "get", "cm", "app", "-n", ns, "-o", "jsonpath={.data.mode}"); got != "cloud" {
		t.Errorf("mode after edit = %q", got)
	}

	// A bad key through kubectl: the server's message names the field.
	bad := "apiVersion: v1\nkind: Secret\nmetadata: {name: bad}\nstringData: {\"a b\": x}\n"
	if out, err := s.kubectlStdin(v, bad, "apply", "-n", ns, "-f", "-"); err == nil || !strings.Contains(out, `data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric characters`) {
		t.Errorf("bad key accepted or badly reported: %v\n%s", err, out)
	}
	bad = "apiVersion: v1\nkind: Secret\nmetadata: {name: bad}\ntype: kubernetes.io/dockerconfigjson\ndata: {config.json: e30=}\n"
	if out, err := s.kubectlStdin(v, bad, "apply", "-n", ns, "-f", "-"); err == nil || !strings.Contains(out, "data[.dockerconfigjson]: Required value") {
		t.Errorf("docker secret without its key accepted or badly reported: %v\n%s", err, out)
	}

	// Delete one of each, then the namespace takes the rest.
	if out := s.kubectl(v, "delete", "secret", "app-creds", "-n", ns); !strings.Contains(out, `secret "app-creds" deleted`) {
		t.Errorf("delete secret: %s", out)
	}
	if out := s.kubectl(v, "delete", "cm", "app", "-n", ns); !strings.Contains(out, `configmap "app" deleted`) {
		t.Errorf("delete configmap: %s", out)
	}
	if out, err := s.kubectlErr(v, "get", "secret", "app-creds", "-n", ns); err == nil || !strings.Contains(out, `secrets "app-creds" not found`) {
		t.Errorf("get deleted secret: %v %s", err, out)
	}
	s.kubectl(v, "delete", "namespace", ns, "--timeout=60s")
	eventually(t, 30*time.Second, func() error {
		if out, err := s.kubectlErr(v, "get", "namespace", ns); err == nil {
			return fmt.Errorf("namespace still there: %s", out)
		}
		return nil
	})
	if out := s.kubectl(v, "get", "secrets,configmaps", "-n", ns, "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("namespace deletion left: %s", out)
	}
}

// secretsBadInput sends bad secrets and config maps over HTTP and checks
// the 422, its causes, and that the stored object did not change.
func secretsBadInput(t *testing.T, s *server) {
	c := s.raw()
	const base = "/api/v1/namespaces/default"
	immutable := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"frozen"},"immutable":true,"type":"kubernetes.io/basic-auth","stringData":{"username":"u","password":"p"}}`
	if code, b := c.do(t, "POST", base+"/secrets", "application/json", immutable); code != 201 {
		t.Fatalf("create immutable secret: %d %s", code, b)
	}
	if code, b := c.do(t, "POST", base+"/configmaps", "application/json",
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"frozen"},"immutable":true,"data":{"k":"v"}}`); code != 201 {
		t.Fatalf("create immutable config map: %d %s", code, b)
	}
	stored := func(kind string) string {
		return s.kubectl("1.32", "get", kind, "frozen", "-o", "jsonpath={.metadata.resourceVersion} {.data}")
	}
	beforeSecret, beforeCM := stored("secret"), stored("configmap")

	big := strings.Repeat("x", 1<<20+1)
	tests := []struct {
		name, method, path, ctype, body string
		field, want                     string
	}{
		{"invalid key", "POST", "/secrets", "application/json",
			`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"k"},"data":{"a/b":"eA=="}}`, "data[a/b]", "a valid config key must consist of"},
		{"invalid name", "POST", "/secrets", "application/json",
			`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"Upper"}}`, "metadata.name", "a lowercase RFC 1123 subdomain"},
		{"docker secret without its key", "POST", "/secrets", "application/json",
			`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"d"},"type":"kubernetes.io/dockerconfigjson","stringData":{"auth":"x"}}`, "data[.dockerconfigjson]", "Required value"},
		{"docker secret not JSON", "POST", "/secrets", "application/json",
			`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"d"},"type":"kubernetes.io/dockerconfigjson","stringData":{".dockerconfigjson":"{\"auths\":{\"r\":{\"password\":\"hunter2\"}}"}}`,
			"data[.dockerconfigjson]", "<secret contents redacted>"},
		{"too large", "POST", "/secrets", "application/json",
			`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"big"},"stringData":{"a":"` + big + `"}}`, "data", "may not be more than 1048576 bytes"},
		{"tls without key", "POST", "/secrets", "application/json",
			`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"t"},"type":"kubernetes.io/tls","stringData":{"tls.crt":"c"}}`, "data[tls.key]", "Required value"},
		{"config map key in both bags", "POST", "/configmaps", "application/json",
			`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup"},"data":{"k":"v"},"binaryData":{"k":"dg=="}}`, "data[k]", "duplicate of key present in binaryData"},
		{"immutable secret data", "PATCH", "/secrets/frozen", "application/merge-patch+json",
			`{"stringData":{"password":"changed"}}`, "data", "field is immutable when `immutable` is set"},
		{"immutable secret unset", "PATCH", "/secrets/frozen", "application/merge-patch+json",
			`{"immutable":false}`, "immutable", "field is immutable when `immutable` is set"},
		{"secret type", "PATCH", "/secrets/frozen", "application/merge-patch+json",
			`{"type":"Opaque"}`, "type", "field is immutable"},
		{"immutable config map data", "PATCH", "/configmaps/frozen", "application/strategic-merge-patch+json",
			`{"data":{"k":"changed"}}`, "data", "field is immutable when `immutable` is set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, b := c.do(t, tc.method, base+tc.path, tc.ctype, tc.body)
			st := parseStatus(t, b)
			if code != 422 || st.Code != 422 || st.Reason != "Invalid" {
				t.Fatalf("got %d %s (%s), want 422 Invalid", code, st.Reason, st.Message)
			}
			if !strings.Contains(st.Message, tc.want) {
				t.Errorf("message %q lacks %q", st.Message, tc.want)
			}
			if strings.Contains(string(b), "hunter2") {
				t.Errorf("the answer repeats the secret: %s", b)
			}
			found := false
			if st.Details != nil {
				for _, cause := range st.Details.Causes {
					found = found || cause.Field == tc.field
				}
			}
			if !found {
				t.Errorf("no cause with field %q in %s", tc.field, b)
			}
		})
	}
	if after := stored("secret"); after != beforeSecret {
		t.Errorf("rejected writes changed the immutable secret: %s -> %s", beforeSecret, after)
	}
	if after := stored("configmap"); after != beforeCM {
		t.Errorf("rejected writes changed the immutable config map: %s -> %s", beforeCM, after)
	}
	if out := s.kubectl("1.32", "get", "secrets,configmaps", "-o", "name"); strings.TrimSpace(out) != "secret/frozen\nconfigmap/frozen" {
		t.Errorf("rejected creates left objects behind: %s", out)
	}
	// kubectl patch of an immutable secret gets the same answer.
	if out, err := s.kubectlErr("1.27", "patch", "secret", "frozen", "-p", `{"data":{"username":"dg=="}}`); err == nil ||
		!strings.Contains(out, `Secret "frozen" is invalid: data: Forbidden: field is immutable when `+"`immutable`"+` is set`) {
		t.Errorf("kubectl patch of an immutable secret: %v\n%s", err, out)
	}
	// Labels of an immutable object still change.
	s.kubectl("1.32", "label", "secret", "frozen", "team=edge")
	s.kubectl("1.32", "delete", "secret,configmap", "frozen")
}

// privatePod pulls an image that only the test's registry holds, with the
// given imagePullSecrets, if any.
func privatePod(name, image, policy string, secrets ...string) string {
	p := podWithImage(name, image, policy)
	if len(secrets) > 0 {
		p += "  imagePullSecrets:\n"
		for _, s := range secrets {
			p += "  - name: " + s + "\n"
		}
	}
	return p
}

// TestImagePullSecrets pulls from a registry with htpasswd auth that the
// node has no credentials for: without imagePullSecrets (or naming a
// secret that does not exist, or one with a wrong password) the pull fails
// with the registry's 401; with a secret made by `kubectl create secret
// docker-registry` (kubectl 1.32 and 1.27) the pod runs. Each outcome uses
// its own tag, so no pod can run on an image another pod pulled.
func TestImagePullSecrets(t *testing.T) {
	reg := pulltest.Start(t, pulltest.Options{Users: map[string]string{"carol": "pa55word"}})
	for _, tag := range []string{"denied", "v132", "v127"} {
		reg.Push(t, "team/private:"+tag, pulltest.ShellImage(t, "pulled with a pull secret"), "carol")
	}
	image := func(tag string) string { return reg.Host + "/team/private:" + tag }
	s := newServer(t)

	s.kubectl("1.32", "create", "secret", "docker-registry", "wrongcred", "--docker-server="+reg.Host, "--docker-username=carol", "--docker-password=nope")
	denied := []struct{ name, manifest, also string }{
		{"nocreds", privatePod("nocreds", image("denied"), "IfNotPresent"), ""},
		{"missing", privatePod("missing", image("denied"), "IfNotPresent", "nosuch"),
			"Unable to retrieve some image pull secrets (nosuch); attempting to pull the image may not succeed."},
		{"wrong", privatePod("wrong", image("denied"), "IfNotPresent", "wrongcred"), ""},
	}
	for _, p := range denied {
		if out, err := s.kubectlStdin("1.32", p.manifest, "apply", "-f", "-"); err != nil {
			t.Fatalf("apply %s: %v %s", p.name, err, out)
		}
	}
	for _, p := range denied {
		eventually(t, 60*time.Second, func() error {
			if r := waitingReason(s, p.name); r != "ImagePullBackOff" {
				return fmt.Errorf("%s: waiting reason %q", p.name, r)
			}
			return nil
		})
		events := s.kubectl("1.32", "get", "events", "--field-selector", "involvedObject.name="+p.name, "-o", "custom-columns=REASON:.reason,MESSAGE:.message", "--no-headers")
		t.Logf("events of %s:\n%s", p.name, events)
		wants := []string{fmt.Sprintf(`Failed to pull image "%s"`, image("denied")), "registry denied access",
			"UNAUTHORIZED: authentication required", "Error: ErrImagePull", "Error: ImagePullBackOff"}
		if p.also != "" {
			wants = append(wants, p.also)
		} else if strings.Contains(events, "FailedToRetrieveImagePullSecret") {
			t.Errorf("%s: the secret was not read:\n%s", p.name, events)
		}
		for _, want := range wants {
			if !strings.Contains(events, want) {
				t.Errorf("events of %s lack %q:\n%s", p.name, want, events)
			}
		}
	}

	// The right credentials, made by each kubectl.
	s.kubectl("1.32", "create", "secret", "docker-registry", "regcred", "--docker-server="+reg.Host, "--docker-username=carol", "--docker-password=pa55word")
	s.kubectl("1.27", "create", "secret", "docker-registry", "regcred-127", "--docker-server="+reg.Host, "--docker-username=carol", "--docker-password=pa55word")
	for _, p := range []struct{ name, manifest, tag string }{
		{"withcreds", privatePod("withcreds", image("v132"), "IfNotPresent", "regcred"), "v132"},
		// A missing secret beside a good one: the pull still succeeds.
		{"withcreds-127", privatePod("withcreds-127", image("v127"), "Always", "nosuch", "regcred-127"), "v127"},
	} {
		if out, err := s.kubectlStdin("1.32", p.manifest, "apply", "-f", "-"); err != nil {
			t.Fatalf("apply %s: %v %s", p.name, err, out)
		}
		waitPod(t, s, "1.32", "default", p.name, "Running")
		eventually(t, 30*time.Second, func() error {
			if out := s.kubectl("1.32", "logs", p.name); !strings.Contains(out, "pulled with a pull secret") {
				return fmt.Errorf("logs of %s: %q", p.name, out)
			}
			return nil
		})
		events := s.kubectl("1.32", "get", "events", "--field-selector", "involvedObject.name="+p.name, "-o", "custom-columns=REASON:.reason,MESSAGE:.message", "--no-headers")
		t.Logf("events of %s:\n%s", p.name, events)
		if !regexpLine(events, fmt.Sprintf(`^Pulled\s+Successfully pulled image "%s"`, image(p.tag))) {
			t.Errorf("events of %s:\n%s", p.name, events)
		}
	}

	// A pod that names no secret is not helped by secrets in its namespace.
	if r := waitingReason(s, "nocreds"); r != "ErrImagePull" && r != "ImagePullBackOff" {
		t.Errorf("nocreds: waiting reason %q", r)
	}
}

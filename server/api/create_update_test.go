package api

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCreateSetsSystemFields(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	p := env.createPod("ns", "a", "", "")
	if p.UID == "" || p.Generation != 1 || !p.CreationTimestamp.Time.Equal(testNow) || p.ResourceVersion == "" || p.Namespace != "ns" {
		t.Fatalf("system fields: %+v", p.ObjectMeta)
	}
	if p.Kind != "Pod" || p.APIVersion != "v1" {
		t.Fatalf("type meta %+v", p.TypeMeta)
	}
	kv, err := env.store.Get(context.Background(), Key("", "pods", "ns", "a"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(kv.Value), "resourceVersion") {
		t.Fatalf("stored value keeps resourceVersion: %s", kv.Value)
	}
	var ns corev1.Namespace
	env.mustDo(200, "GET", "/api/v1/namespaces/ns", "").into(t, &ns)
	if len(ns.Spec.Finalizers) != 1 || ns.Spec.Finalizers[0] != corev1.FinalizerKubernetes || ns.Status.Phase != corev1.NamespaceActive {
		t.Fatalf("namespace %+v", ns)
	}
}

func TestCreateErrors(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	env.createPod("ns", "exists", "", "")
	env.createNamespace("gone")
	env.mustDo(200, "DELETE", "/api/v1/namespaces/gone", "")
	tests := []struct {
		name    string
		path    string
		body    string
		ct      string
		code    int
		reason  metav1.StatusReason
		message string
	}{
		{"namespace mismatch", "/api/v1/namespaces/ns/pods",
			`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x","namespace":"other"},"spec":{"containers":[{"name":"c","image":"i"}]}}`,
			"", 400, metav1.StatusReasonBadRequest, "does not match the namespace sent on the request"},
		{"missing namespace", "/api/v1/namespaces/nope/pods", podJSON("x", "", ""), "", 404, metav1.StatusReasonNotFound, `namespaces "nope" not found`},
		{"terminating namespace", "/api/v1/namespaces/gone/pods", podJSON("x", "", ""), "", 403, metav1.StatusReasonForbidden,
			"unable to create new content in namespace gone because it is being terminated"},
		{"exists", "/api/v1/namespaces/ns/pods", podJSON("exists", "", ""), "", 409, metav1.StatusReasonAlreadyExists, `pods "exists" already exists`},
		{"invalid", "/api/v1/namespaces/ns/pods", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"},"spec":{"containers":[]}}`,
			"", 422, metav1.StatusReasonInvalid, "spec.containers"},
		{"no name", "/api/v1/namespaces/ns/pods", `{"apiVersion":"v1","kind":"Pod","metadata":{},"spec":{"containers":[{"name":"c","image":"i"}]}}`,
			"", 422, metav1.StatusReasonInvalid, "metadata.name: Required value"},
		{"wrong kind", "/api/v1/namespaces/ns/pods", `{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"}}`,
			"", 400, metav1.StatusReasonBadRequest, "does not match the URL"},
		{"wrong version", "/api/v1/namespaces/ns/pods", `{"apiVersion":"v2","kind":"Pod","metadata":{"name":"x"}}`,
			"", 400, metav1.StatusReasonBadRequest, "does not match the URL"},
		{"malformed json", "/api/v1/namespaces/ns/pods", `{"apiVersion":"v1",`, "", 400, metav1.StatusReasonBadRequest, "could not be decoded"},
		{"malformed yaml", "/api/v1/namespaces/ns/pods", "a: [b\n", "application/yaml", 400, metav1.StatusReasonBadRequest, "not valid YAML"},
		{"unknown media type", "/api/v1/namespaces/ns/pods", podJSON("x", "", ""), "text/plain", 415, metav1.StatusReasonUnsupportedMediaType, "unknown format"},
		{"unknown field strict", "/api/v1/namespaces/ns/pods?fieldValidation=Strict",
			`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"},"spec":{"containers":[{"name":"c","image":"i","foo":1}]}}`,
			"", 400, metav1.StatusReasonBadRequest, `strict decoding error: unknown field "spec.containers[0].foo"`},
		{"duplicate field strict", "/api/v1/namespaces/ns/pods?fieldValidation=Strict",
			`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x","name":"y"},"spec":{"containers":[{"name":"c","image":"i"}]}}`,
			"", 400, metav1.StatusReasonBadRequest, `strict decoding error: duplicate field "metadata.name"`},
		{"duplicate yaml key strict", "/api/v1/namespaces/ns/pods?fieldValidation=Strict",
			"apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  name: z\nspec:\n  containers: [{name: c, image: i}]\n",
			"application/yaml", 400, metav1.StatusReasonBadRequest, `strict decoding error`},
		{"bad fieldValidation", "/api/v1/namespaces/ns/pods?fieldValidation=Loud", podJSON("x", "", ""), "", 400, metav1.StatusReasonBadRequest, "fieldValidation"},
		{"bad dryRun", "/api/v1/namespaces/ns/pods?dryRun=Some", podJSON("x", "", ""), "", 400, metav1.StatusReasonBadRequest, "dryRun"},
		{"cluster-wide create of namespaced kind", "/api/v1/pods", podJSON("x", "", ""), "", 405, metav1.StatusReasonMethodNotAllowed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := env.store.Revision(context.Background())
			var r response
			if tt.ct != "" {
				r = env.do("POST", tt.path, tt.body, "Content-Type", tt.ct)
			} else {
				r = env.do("POST", tt.path, tt.body)
			}
			if r.code != tt.code {
				t.Fatalf("code %d, want %d: %s", r.code, tt.code, r.body)
			}
			st := r.status(t)
			if st.Reason != tt.reason || !strings.Contains(st.Message, tt.message) || st.Code != int32(tt.code) {
				t.Fatalf("status %+v", st)
			}
			if after, _ := env.store.Revision(context.Background()); after != before {
				t.Fatalf("store changed on error: %d -> %d", before, after)
			}
		})
	}
}

func TestCreateFieldValidationWarnIgnoreAndYAML(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	body := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"warn"},"spec":{"bogus":true,"containers":[{"name":"c","image":"i"}]}}`
	r := env.mustDo(201, "POST", "/api/v1/namespaces/ns/pods", body) // default Warn
	if w := r.header.Get("Warning"); w != `299 - "unknown field \"spec.bogus\""` {
		t.Fatalf("warning header %q", w)
	}
	body = strings.Replace(body, "warn", "ignore", 1)
	r = env.mustDo(201, "POST", "/api/v1/namespaces/ns/pods?fieldValidation=Ignore", body)
	if w := r.header.Get("Warning"); w != "" {
		t.Fatalf("warning with Ignore: %q", w)
	}
	yml := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: yml\nspec:\n  containers:\n  - name: c\n    image: i\n"
	var p corev1.Pod
	env.mustDo(201, "POST", "/api/v1/namespaces/ns/pods?fieldValidation=Strict", yml, "Content-Type", "application/yaml").into(t, &p)
	if p.Name != "yml" || p.Spec.Containers[0].Image != "i" {
		t.Fatalf("yaml create %+v", p)
	}
}

func TestCreateGenerateNameAndDryRun(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	var p corev1.Pod
	body := `{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-"},"spec":{"containers":[{"name":"c","image":"i"}]}}`
	env.mustDo(201, "POST", "/api/v1/namespaces/ns/pods", body).into(t, &p)
	if !strings.HasPrefix(p.Name, "web-") || len(p.Name) != len("web-")+5 {
		t.Fatalf("generated name %q", p.Name)
	}
	before, _ := env.store.Revision(context.Background())
	env.mustDo(201, "POST", "/api/v1/namespaces/ns/pods?dryRun=All", podJSON("dry", "", ""))
	env.mustDo(404, "GET", "/api/v1/namespaces/ns/pods/dry", "")
	if after, _ := env.store.Revision(context.Background()); after != before {
		t.Fatal("dry run wrote")
	}
}

func TestUpdateConflictAndPreservedFields(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	p := env.createPod("ns", "a", "", "")
	stale := p.ResourceVersion

	p.Labels = map[string]string{"v": "1"}
	p.UID = ""
	p.CreationTimestamp = metav1.Time{}
	var upd corev1.Pod
	env.mustDo(200, "PUT", "/api/v1/namespaces/ns/pods/a", mustJSON(t, p)).into(t, &upd)
	if upd.Labels["v"] != "1" || upd.ResourceVersion == stale || upd.UID == "" || upd.CreationTimestamp.IsZero() || upd.Generation != 1 {
		t.Fatalf("update %+v", upd.ObjectMeta)
	}

	p.ResourceVersion = stale
	st := env.mustDo(409, "PUT", "/api/v1/namespaces/ns/pods/a", mustJSON(t, p)).status(t)
	want := `Operation cannot be fulfilled on pods "a": the object has been modified; please apply your changes to the latest version and try again`
	if st.Reason != metav1.StatusReasonConflict || st.Message != want {
		t.Fatalf("conflict %+v", st)
	}

	// A no-op update writes nothing.
	rev, _ := env.store.Revision(context.Background())
	var same corev1.Pod
	env.mustDo(200, "PUT", "/api/v1/namespaces/ns/pods/a", mustJSON(t, upd)).into(t, &same)
	if r2, _ := env.store.Revision(context.Background()); r2 != rev || same.ResourceVersion != upd.ResourceVersion {
		t.Fatalf("no-op update wrote: %d -> %d", rev, r2)
	}

	// A spec change bumps generation; status sent on the main resource is ignored.
	upd.Spec.ActiveDeadlineSeconds = ptr(int64(5))
	upd.Status.Phase = corev1.PodRunning
	var gen corev1.Pod
	env.mustDo(200, "PUT", "/api/v1/namespaces/ns/pods/a", mustJSON(t, upd)).into(t, &gen)
	if gen.Generation != 2 || gen.Status.Phase == corev1.PodRunning {
		t.Fatalf("generation %d phase %s", gen.Generation, gen.Status.Phase)
	}

	// Name mismatch, unknown object.
	env.mustDo(400, "PUT", "/api/v1/namespaces/ns/pods/b", mustJSON(t, gen))
	gen.Name, gen.ResourceVersion = "missing", ""
	env.mustDo(404, "PUT", "/api/v1/namespaces/ns/pods/missing", mustJSON(t, gen))
}

func TestStatusSubresource(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	p := env.createPod("ns", "a", "", "")
	p.Status.Phase = corev1.PodRunning
	p.Spec.Containers[0].Image = "changed"
	var out corev1.Pod
	env.mustDo(200, "PUT", "/api/v1/namespaces/ns/pods/a/status", mustJSON(t, p)).into(t, &out)
	if out.Status.Phase != corev1.PodRunning || out.Spec.Containers[0].Image != "busybox" {
		t.Fatalf("status update: phase %s image %s", out.Status.Phase, out.Spec.Containers[0].Image)
	}
	env.mustDo(200, "PATCH", "/api/v1/namespaces/ns/pods/a/status", `{"status":{"podIP":"10.0.0.5"}}`,
		"Content-Type", "application/merge-patch+json").into(t, &out)
	if out.Status.PodIP != "10.0.0.5" || out.Status.Phase != corev1.PodRunning {
		t.Fatalf("status patch: %+v", out.Status)
	}
	env.mustDo(200, "GET", "/api/v1/namespaces/ns/pods/a/status", "").into(t, &out)
	if out.Status.PodIP != "10.0.0.5" {
		t.Fatalf("status get: %+v", out.Status)
	}
	env.mustDo(404, "GET", "/api/v1/namespaces/ns/pods/a/bogus", "")
	env.mustDo(405, "DELETE", "/api/v1/namespaces/ns/pods/a/status", "")
}

// Generation is kept only by kinds whose strategy keeps one, as in
// Kubernetes: a pod has generation 1, a namespace or secret none, even
// when the client sent one or changed the spec.
func TestGenerationOnlyWhereTheKindKeepsOne(t *testing.T) {
	env := newTestEnv(t)
	var ns corev1.Namespace
	env.mustDo(201, "POST", "/api/v1/namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"g","generation":7}}`).into(t, &ns)
	if ns.Generation != 0 {
		t.Fatalf("namespace generation %d, want none", ns.Generation)
	}
	ns.Spec.Finalizers = append(ns.Spec.Finalizers, "example.com/f")
	var upd corev1.Namespace
	env.mustDo(200, "PUT", "/api/v1/namespaces/g", mustJSON(t, ns)).into(t, &upd)
	if upd.Generation != 0 {
		t.Fatalf("namespace generation after a spec change %d, want none", upd.Generation)
	}
	var sec corev1.Secret
	env.mustDo(201, "POST", "/api/v1/namespaces/g/secrets", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"stringData":{"k":"v"}}`).into(t, &sec)
	if sec.Generation != 0 {
		t.Fatalf("secret generation %d, want none", sec.Generation)
	}
	p := env.createPod("g", "a", "", "")
	if p.Generation != 1 {
		t.Fatalf("pod generation %d, want 1", p.Generation)
	}
}

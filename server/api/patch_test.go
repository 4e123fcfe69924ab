package api

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPatchTypes(t *testing.T) {
	tests := []struct {
		name   string
		ct     string
		patch  string
		code   int
		check  func(t *testing.T, p corev1.Pod)
		reason metav1.StatusReason
		msg    string
	}{
		{name: "merge", ct: "application/merge-patch+json", patch: `{"metadata":{"labels":{"a":"b"}}}`, code: 200,
			check: func(t *testing.T, p corev1.Pod) {
				if p.Labels["a"] != "b" || p.Labels["app"] != "x" {
					t.Fatalf("labels %v", p.Labels)
				}
			}},
		// A merge patch replaces the list, which drops container d: pod
		// validation refuses that.
		{name: "merge replaces lists", ct: "application/merge-patch+json",
			patch: `{"spec":{"containers":[{"name":"c","image":"new"}]}}`, code: 422,
			reason: metav1.StatusReasonInvalid, msg: "may not add or remove containers"},
		{name: "strategic merges lists by key", ct: "application/strategic-merge-patch+json",
			patch: `{"spec":{"containers":[{"name":"c","image":"new"}]}}`, code: 200,
			check: func(t *testing.T, p corev1.Pod) {
				if len(p.Spec.Containers) != 2 || p.Spec.Containers[0].Image != "new" || p.Spec.Containers[1].Name != "d" {
					t.Fatalf("containers %+v", p.Spec.Containers)
				}
			}},
		{name: "json patch", ct: "application/json-patch+json",
			patch: `[{"op":"add","path":"/metadata/annotations","value":{"k":"v"}},{"op":"replace","path":"/spec/containers/1/image","value":"z"}]`, code: 200,
			check: func(t *testing.T, p corev1.Pod) {
				if p.Annotations["k"] != "v" || p.Spec.Containers[1].Image != "z" {
					t.Fatalf("patched %+v", p)
				}
			}},
		{name: "json patch test fails", ct: "application/json-patch+json",
			patch: `[{"op":"test","path":"/metadata/name","value":"other"}]`, code: 422, reason: metav1.StatusReasonInvalid, msg: "could not be applied"},
		{name: "json patch garbage", ct: "application/json-patch+json", patch: `{"op":"add"}`, code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "apply unsupported", ct: "application/apply-patch+yaml", patch: "metadata: {}", code: 415,
			reason: metav1.StatusReasonUnsupportedMediaType, msg: "server-side apply is not supported"},
		{name: "unknown patch type", ct: "application/json", patch: `{}`, code: 415, reason: metav1.StatusReasonUnsupportedMediaType},
		{name: "strict unknown field from patch", ct: "application/merge-patch+json",
			patch: `{"spec":{"containers":[{"name":"c","image":"i","bogus":1}]}}`, code: 400, reason: metav1.StatusReasonBadRequest,
			msg: `strict decoding error: unknown field "spec.containers[0].bogus"`},
		{name: "stale resourceVersion", ct: "application/merge-patch+json",
			patch: `{"metadata":{"resourceVersion":"1","labels":{"q":"r"}}}`, code: 409, reason: metav1.StatusReasonConflict, msg: "the object has been modified"},
		{name: "invalid result", ct: "application/merge-patch+json", patch: `{"spec":{"containers":null}}`, code: 422, reason: metav1.StatusReasonInvalid},
		{name: "rename refused", ct: "application/merge-patch+json", patch: `{"metadata":{"name":"other"}}`, code: 400, reason: metav1.StatusReasonBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			env.createNamespace("ns")
			env.mustDo(201, "POST", "/api/v1/namespaces/ns/pods", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"app":"x"}},`+
				`"spec":{"containers":[{"name":"c","image":"i"},{"name":"d","image":"j"}]}}`)
			before, _ := env.store.Revision(context.Background())
			r := env.do("PATCH", "/api/v1/namespaces/ns/pods/p?fieldValidation=Strict", tt.patch, "Content-Type", tt.ct)
			if r.code != tt.code {
				t.Fatalf("code %d want %d: %s", r.code, tt.code, r.body)
			}
			if tt.check != nil {
				var p corev1.Pod
				r.into(t, &p)
				tt.check(t, p)
				return
			}
			st := r.status(t)
			if st.Reason != tt.reason || !strings.Contains(st.Message, tt.msg) {
				t.Fatalf("status %+v", st)
			}
			if after, _ := env.store.Revision(context.Background()); after != before {
				t.Fatal("store changed on a failed patch")
			}
		})
	}
}

// TestPatchRetriesStoreConflicts: a patch without a resourceVersion is
// applied again when a concurrent write wins, as GuaranteedUpdate does.
func TestPatchRetriesStoreConflicts(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	env.createPod("ns", "p", "", "")
	env.store.mu.Lock()
	env.store.failUpdates = 3
	env.store.mu.Unlock()
	var p corev1.Pod
	env.mustDo(200, "PATCH", "/api/v1/namespaces/ns/pods/p", `{"metadata":{"labels":{"x":"y"}}}`,
		"Content-Type", "application/strategic-merge-patch+json").into(t, &p)
	if p.Labels["x"] != "y" {
		t.Fatalf("labels %v", p.Labels)
	}
	// A PUT pinned to a resourceVersion is not retried: it is a 409.
	env.store.mu.Lock()
	env.store.failUpdates = 1
	env.store.mu.Unlock()
	p.Labels["x"] = "z"
	r := env.do("PUT", "/api/v1/namespaces/ns/pods/p", mustJSON(t, p))
	if r.code != 200 {
		// The injected conflict looks like a concurrent write; the pinned
		// resourceVersion is still current, so the retry succeeds.
		t.Fatalf("pinned PUT after injected conflict: %d %s", r.code, r.body)
	}
	env.mustDo(404, "PATCH", "/api/v1/namespaces/ns/pods/none", `{}`, "Content-Type", "application/merge-patch+json")
}

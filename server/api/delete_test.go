package api

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPodGracefulDeletion(t *testing.T) {
	tests := []struct {
		name      string
		spec      string // extra spec JSON
		phase     corev1.PodPhase
		query     string
		body      string
		wantGone  bool
		wantGrace int64
	}{
		{name: "bound pod default grace", spec: `"nodeName":"n1"`, wantGrace: 30},
		{name: "bound pod spec grace", spec: `"nodeName":"n1","terminationGracePeriodSeconds":7`, wantGrace: 7},
		{name: "bound pod option grace", spec: `"nodeName":"n1"`, query: "?gracePeriodSeconds=3", wantGrace: 3},
		{name: "bound pod body grace", spec: `"nodeName":"n1"`, body: `{"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":4}`, wantGrace: 4},
		{name: "negative grace is one second", spec: `"nodeName":"n1"`, query: "?gracePeriodSeconds=-5", wantGrace: 1},
		{name: "force", spec: `"nodeName":"n1"`, query: "?gracePeriodSeconds=0", wantGone: true},
		{name: "unbound", wantGone: true},
		{name: "terminal", spec: `"nodeName":"n1"`, phase: corev1.PodSucceeded, wantGone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			env.createNamespace("ns")
			p := env.createPod("ns", "p", "", tt.spec)
			if tt.phase != "" {
				p.Status.Phase = tt.phase
				env.mustDo(200, "PUT", "/api/v1/namespaces/ns/pods/p/status", mustJSON(t, p))
			}
			var got corev1.Pod
			env.mustDo(200, "DELETE", "/api/v1/namespaces/ns/pods/p"+tt.query, tt.body).into(t, &got)
			if got.Kind != "Pod" || got.Name != "p" {
				t.Fatalf("pods answer delete with the object: %+v", got.TypeMeta)
			}
			r := env.do("GET", "/api/v1/namespaces/ns/pods/p", "")
			if tt.wantGone {
				if r.code != 404 {
					t.Fatalf("pod still stored: %s", r.body)
				}
				return
			}
			var stored corev1.Pod
			r.into(t, &stored)
			if stored.DeletionTimestamp == nil || stored.DeletionGracePeriodSeconds == nil || *stored.DeletionGracePeriodSeconds != tt.wantGrace ||
				!stored.DeletionTimestamp.Time.Equal(testNow.Add(time.Duration(tt.wantGrace)*time.Second)) {
				t.Fatalf("deletion marks %v %v", stored.DeletionTimestamp, stored.DeletionGracePeriodSeconds)
			}
			// A second delete without a shorter grace changes nothing.
			env.mustDo(200, "DELETE", "/api/v1/namespaces/ns/pods/p", "")
			env.mustDo(200, "GET", "/api/v1/namespaces/ns/pods/p", "")
			// The node's agent deletes it for real with grace 0.
			env.mustDo(200, "DELETE", "/api/v1/namespaces/ns/pods/p?gracePeriodSeconds=0", "")
			env.mustDo(404, "GET", "/api/v1/namespaces/ns/pods/p", "")
		})
	}
}

func TestDeleteShortensGrace(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	env.createPod("ns", "p", "", `"nodeName":"n1"`)
	env.mustDo(200, "DELETE", "/api/v1/namespaces/ns/pods/p", "")
	var p corev1.Pod
	env.mustDo(200, "DELETE", "/api/v1/namespaces/ns/pods/p?gracePeriodSeconds=10", "").into(t, &p)
	if *p.DeletionGracePeriodSeconds != 10 || !p.DeletionTimestamp.Time.Equal(testNow.Add(10*time.Second)) {
		t.Fatalf("shortened: %v %v", p.DeletionTimestamp, *p.DeletionGracePeriodSeconds)
	}
}

func TestDeleteFinalizersAndPreconditions(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	var p corev1.Pod
	env.mustDo(201, "POST", "/api/v1/namespaces/ns/pods", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"f","finalizers":["example.com/hold"]},`+
		`"spec":{"containers":[{"name":"c","image":"i"}]}}`).into(t, &p)

	st := env.mustDo(409, "DELETE", "/api/v1/namespaces/ns/pods/f", `{"preconditions":{"uid":"nope"}}`).status(t)
	if st.Reason != metav1.StatusReasonConflict {
		t.Fatalf("uid precondition: %+v", st)
	}
	env.mustDo(409, "DELETE", "/api/v1/namespaces/ns/pods/f", `{"preconditions":{"resourceVersion":"1"}}`)

	env.mustDo(200, "DELETE", "/api/v1/namespaces/ns/pods/f", `{"preconditions":{"uid":"`+string(p.UID)+`"},"propagationPolicy":"Background"}`).into(t, &p)
	if p.DeletionTimestamp == nil || *p.DeletionGracePeriodSeconds != 0 {
		t.Fatalf("finalizer object should be marked: %+v", p.ObjectMeta)
	}
	// Finalizers cannot be added while deleting.
	env.mustDo(422, "PATCH", "/api/v1/namespaces/ns/pods/f", `{"metadata":{"finalizers":["example.com/hold","example.com/more"]}}`,
		"Content-Type", "application/merge-patch+json")
	// Removing the last finalizer removes the object.
	env.mustDo(200, "PATCH", "/api/v1/namespaces/ns/pods/f", `{"metadata":{"finalizers":null}}`, "Content-Type", "application/merge-patch+json")
	env.mustDo(404, "GET", "/api/v1/namespaces/ns/pods/f", "")

	env.mustDo(400, "DELETE", "/api/v1/namespaces/ns/pods/x?propagationPolicy=Sideways", "")
	env.mustDo(404, "DELETE", "/api/v1/namespaces/ns/pods/x", "").status(t)
}

func TestDeleteNonPodAnswersStatus(t *testing.T) {
	env := newTestEnv(t)
	env.mustDo(201, "POST", "/api/v1/nodes", `{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}}`)
	env.mustDo(200, "DELETE", "/api/v1/nodes/n1?dryRun=All", "")
	env.mustDo(200, "GET", "/api/v1/nodes/n1", "")
	st := env.mustDo(200, "DELETE", "/api/v1/nodes/n1", "").status(t)
	if st.Status != metav1.StatusSuccess || st.Details == nil || st.Details.Name != "n1" || st.Details.Kind != "nodes" || st.Details.UID == "" {
		t.Fatalf("delete status %+v", st)
	}
}

func TestNamespaceDeletionAndFinalize(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	var ns corev1.Namespace
	env.mustDo(200, "DELETE", "/api/v1/namespaces/ns", "").into(t, &ns)
	if ns.Status.Phase != corev1.NamespaceTerminating || ns.DeletionTimestamp == nil {
		t.Fatalf("namespace after delete: %+v", ns)
	}
	// Deleting again keeps it while spec.finalizers remain.
	env.mustDo(200, "DELETE", "/api/v1/namespaces/ns", "")
	env.mustDo(200, "GET", "/api/v1/namespaces/ns", "")
	// A main-resource update cannot change spec.finalizers.
	ns.Spec.Finalizers = nil
	env.mustDo(200, "PUT", "/api/v1/namespaces/ns", mustJSON(t, ns)).into(t, &ns)
	if len(ns.Spec.Finalizers) != 1 {
		t.Fatalf("PUT changed finalizers: %v", ns.Spec.Finalizers)
	}
	ns.Spec.Finalizers = nil
	env.mustDo(200, "PUT", "/api/v1/namespaces/ns/finalize", mustJSON(t, ns))
	env.mustDo(404, "GET", "/api/v1/namespaces/ns", "")
}

func TestDeleteCollection(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	env.createPod("ns", "a", `{"app":"web"}`, "")
	env.createPod("ns", "b", `{"app":"web"}`, `"nodeName":"n1"`)
	env.createPod("ns", "c", `{"app":"db"}`, "")
	var l corev1.PodList
	env.mustDo(200, "DELETE", "/api/v1/namespaces/ns/pods?labelSelector=app%3Dweb", "").into(t, &l)
	if names(l) != "ns/a,ns/b" {
		t.Fatalf("deleted %s", names(l))
	}
	var left corev1.PodList
	env.mustDo(200, "GET", "/api/v1/namespaces/ns/pods", "").into(t, &left)
	// b is bound, so it stays in its grace period.
	if names(left) != "ns/b,ns/c" {
		t.Fatalf("left %s", names(left))
	}
	env.mustDo(405, "DELETE", "/api/v1/pods", "")
}

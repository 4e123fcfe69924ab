package controller

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kedge.dev/kedge/client"
)

// fakeNamespaceAPI serves namespaces and pods from memory and feeds each
// watch from its resource's channel.
type fakeNamespaceAPI struct {
	mu         sync.Mutex
	namespaces map[string]*corev1.Namespace
	pods       map[string][]string // namespace -> pod names
	nsLists    int                 // full lists of namespaces (Limit 0)
	finalized  []string
	watches    map[string]chan client.WatchEvent
}

func newFakeNamespaceAPI() *fakeNamespaceAPI {
	return &fakeNamespaceAPI{namespaces: map[string]*corev1.Namespace{}, pods: map[string][]string{},
		watches: map[string]chan client.WatchEvent{"namespaces": make(chan client.WatchEvent, 100), "pods": make(chan client.WatchEvent, 100)}}
}

func (f *fakeNamespaceAPI) List(_ context.Context, r client.Resource, opts metav1.ListOptions, out any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch l := out.(type) {
	case *corev1.NamespaceList:
		if opts.Limit == 0 {
			f.nsLists++
		}
		for _, ns := range f.namespaces {
			l.Items = append(l.Items, *ns.DeepCopy())
		}
	case *metav1.PartialObjectMetadataList:
		for _, p := range f.pods[r.Namespace] {
			l.Items = append(l.Items, metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: p, Namespace: r.Namespace}})
		}
	}
	return nil
}

func (f *fakeNamespaceAPI) Watch(ctx context.Context, r client.Resource, _ metav1.ListOptions, _ func() any) (<-chan client.WatchEvent, error) {
	src := f.watches[r.Resource]
	ch := make(chan client.WatchEvent)
	go func() {
		defer close(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-src:
				select {
				case ch <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return ch, nil
}

// Delete removes a pod at once (no kubelet in this test).
func (f *fakeNamespaceAPI) Delete(_ context.Context, r client.Resource, name string, _ metav1.DeleteOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var kept []string
	for _, p := range f.pods[r.Namespace] {
		if p != name {
			kept = append(kept, p)
		}
	}
	f.pods[r.Namespace] = kept
	return nil
}

func (f *fakeNamespaceAPI) Put(_ context.Context, _ client.Resource, name, sub string, _, _ any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sub == "finalize" {
		f.finalized = append(f.finalized, name)
		delete(f.namespaces, name)
	}
	return nil
}

func (f *fakeNamespaceAPI) podEvent(ns string) {
	f.watches["pods"] <- client.WatchEvent{Type: "MODIFIED", Object: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns}}}
}

func (f *fakeNamespaceAPI) counts() (lists int, finalized []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nsLists, append([]string(nil), f.finalized...)
}

func TestNamespaceControllerListsNamespacesOnlyWhenTheyChange(t *testing.T) {
	api := newFakeNamespaceAPI()
	for _, n := range []string{"a", "b", "c"} {
		api.namespaces[n] = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n},
			Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}}}
	}
	api.pods["a"] = []string{"p1"}
	c := NewNamespaces(api, []client.Resource{client.Pods}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	c.resync = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	eventually("the first list", func() bool { n, _ := api.counts(); return n >= 1 })
	time.Sleep(50 * time.Millisecond)
	base, _ := api.counts()
	// Pod churn with nothing terminating: no namespace list.
	for i := 0; i < 20; i++ {
		api.podEvent("a")
	}
	time.Sleep(100 * time.Millisecond)
	if n, _ := api.counts(); n != base {
		t.Fatalf("pod events listed namespaces %d times", n-base)
	}
	// Namespace b is deleted: a namespace event relists and b, empty, is
	// finalized.
	api.mu.Lock()
	now := metav1.Now()
	api.namespaces["b"].DeletionTimestamp = &now
	api.namespaces["a"].DeletionTimestamp = &now
	api.pods["a"] = []string{"p1", "p2"}
	api.mu.Unlock()
	api.watches["namespaces"] <- client.WatchEvent{Type: "MODIFIED", Object: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "b"}}}
	eventually("b finalized", func() bool { _, f := api.counts(); return len(f) == 1 && f[0] == "b" })
	// a had pods: the controller deleted them (the fake removes them at
	// once); the next pod event in a finishes a without a new list.
	listsBefore, _ := api.counts()
	api.podEvent("c") // not terminating: ignored
	time.Sleep(50 * time.Millisecond)
	if _, f := api.counts(); len(f) != 1 {
		t.Fatalf("a pod event outside terminating namespaces finished one: %v", f)
	}
	api.podEvent("a")
	eventually("a finalized", func() bool { _, f := api.counts(); return len(f) == 2 && f[1] == "a" })
	if n, _ := api.counts(); n != listsBefore {
		t.Fatalf("a pod event in a terminating namespace listed namespaces %d times", n-listsBefore)
	}
}

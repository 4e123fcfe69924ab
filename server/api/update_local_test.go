package api

import (
	"context"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"kedge.dev/kedge/raftstore"
)

// laggingStore is a memStore whose local copy (GetLocal) is what the store
// held at the last freeze, as on a follower that has not applied the
// latest writes yet.
type laggingStore struct {
	*memStore
	mu     sync.Mutex
	local  map[string]raftstore.KeyValue
	localN int // GetLocal calls
}

func (l *laggingStore) freeze() {
	l.memStore.mu.Lock()
	defer l.memStore.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.local = map[string]raftstore.KeyValue{}
	for k, kv := range l.memStore.cur {
		l.local[k] = kv
	}
}

func (l *laggingStore) GetLocal(_ context.Context, key string) (raftstore.KeyValue, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.localN++
	kv, ok := l.local[key]
	if !ok {
		return raftstore.KeyValue{}, raftstore.ErrNotFound
	}
	return kv, nil
}

// An update starts from the local copy; whatever a stale copy could get
// wrong is decided again on a linearizable read.
func TestUpdateFromStaleLocalCopy(t *testing.T) {
	ls := &laggingStore{memStore: newMemStore()}
	env := newTestEnv(t, func(c *Config) { c.Store = ls })
	env.store = ls.memStore
	env.createNamespace("ns")
	orig := env.createPod("ns", "a", "", "")
	ls.freeze() // the local copy holds orig from here on

	put := func(p *corev1.Pod, want int) corev1.Pod {
		t.Helper()
		var out corev1.Pod
		r := env.mustDo(want, "PUT", "/api/v1/namespaces/ns/pods/a", mustJSON(t, p))
		if want == 200 {
			r.into(t, &out)
		}
		return out
	}
	label := func(p corev1.Pod, v, rv string) *corev1.Pod {
		p.Labels = map[string]string{"v": v}
		p.ResourceVersion = rv
		return &p
	}

	v1 := put(label(orig, "1", ""), 200) // local copy current: one CAS
	// The local copy still holds orig: the CAS on its revision fails and
	// the retry reads the real state.
	v2 := put(label(orig, "2", ""), 200)
	if v2.Labels["v"] != "2" || v2.ResourceVersion == v1.ResourceVersion {
		t.Fatalf("update over a stale copy: %+v", v2.ObjectMeta)
	}
	// A precondition on the real revision holds although the copy is older.
	v3 := put(label(v2, "3", v2.ResourceVersion), 200)
	// A precondition on the copy's (stale) revision is a conflict.
	put(label(orig, "4", orig.ResourceVersion), 409)
	// The copy equals what is sent, the real state does not: not a no-op.
	same := orig
	same.ResourceVersion = ""
	back := put(&same, 200)
	var stored corev1.Pod
	env.mustDo(200, "GET", "/api/v1/namespaces/ns/pods/a", "").into(t, &stored)
	if stored.Labels["v"] != "" || stored.ResourceVersion != back.ResourceVersion || back.ResourceVersion == v3.ResourceVersion {
		t.Fatalf("an update equal to the stale copy was taken for a no-op: answered %+v, stored %+v", back.ObjectMeta, stored.ObjectMeta)
	}
	// A real no-op writes nothing.
	rev, _ := ls.Revision(context.Background())
	if again := put(&back, 200); again.ResourceVersion != back.ResourceVersion {
		t.Fatalf("no-op update wrote: %s -> %s", back.ResourceVersion, again.ResourceVersion)
	}
	if r2, _ := ls.Revision(context.Background()); r2 != rev {
		t.Fatalf("no-op update moved the revision %d -> %d", rev, r2)
	}
	// A dry run answers from the real state, not from the stale copy.
	var dry corev1.Pod
	env.mustDo(200, "PUT", "/api/v1/namespaces/ns/pods/a?dryRun=All", mustJSON(t, label(orig, "dry", ""))).into(t, &dry)
	if dry.ResourceVersion != back.ResourceVersion {
		t.Fatalf("dry run answered at resourceVersion %s, the object is at %s", dry.ResourceVersion, back.ResourceVersion)
	}
	// Not in the local copy (created through another server): updated.
	b := env.createPod("ns", "b", "", "")
	var out corev1.Pod
	env.mustDo(200, "PUT", "/api/v1/namespaces/ns/pods/b", mustJSON(t, label(b, "x", ""))).into(t, &out)
	if out.Labels["v"] != "x" {
		t.Fatalf("update of a pod missing from the local copy: %+v", out.ObjectMeta)
	}
	if ls.localN == 0 {
		t.Fatal("updates never read the local copy")
	}
}

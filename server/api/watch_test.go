package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// watchEvent is one decoded line of a watch stream.
type watchEvent struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

func (ev watchEvent) pod(t testing.TB) corev1.Pod {
	t.Helper()
	var p corev1.Pod
	if err := json.Unmarshal(ev.Object, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

type watchClient struct {
	t      testing.TB
	resp   *http.Response
	events chan watchEvent
}

// watch opens a watch stream and reads it in the background.
func (e *testEnv) watch(path string, headers ...string) *watchClient {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.http.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		defer resp.Body.Close()
		e.t.Fatalf("watch %s: %d", path, resp.StatusCode)
	}
	wc := &watchClient{t: e.t, resp: resp, events: make(chan watchEvent, 100)}
	e.t.Cleanup(func() { resp.Body.Close() })
	go func() {
		defer close(wc.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev watchEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				return
			}
			wc.events <- ev
		}
	}()
	return wc
}

func (w *watchClient) next() watchEvent {
	w.t.Helper()
	select {
	case ev, ok := <-w.events:
		if !ok {
			w.t.Fatal("watch stream ended")
		}
		return ev
	case <-time.After(5 * time.Second):
		w.t.Fatal("no watch event within 5s")
	}
	return watchEvent{}
}

func (w *watchClient) expect(typ, name string) watchEvent {
	w.t.Helper()
	ev := w.next()
	if ev.Type != typ || (name != "" && ev.pod(w.t).Name != name) {
		w.t.Fatalf("got %s %s, want %s %s", ev.Type, ev.pod(w.t).Name, typ, name)
	}
	return ev
}

func (w *watchClient) expectQuiet(d time.Duration) {
	w.t.Helper()
	select {
	case ev, ok := <-w.events:
		if ok {
			w.t.Fatalf("unexpected event %s %s", ev.Type, ev.Object)
		}
	case <-time.After(d):
	}
}

func (w *watchClient) expectEnd() {
	w.t.Helper()
	select {
	case ev, ok := <-w.events:
		if ok {
			w.t.Fatalf("unexpected event %s before end", ev.Type)
		}
	case <-time.After(5 * time.Second):
		w.t.Fatal("watch did not end")
	}
}

func TestWatchLifecycle(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	env.createPod("ns", "old", "", "")
	w := env.watch("/api/v1/namespaces/ns/pods?watch=1")
	if ct := w.resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	w.expect("ADDED", "old") // initial state for resourceVersion ""
	p := env.createPod("ns", "new", "", "")
	ev := w.expect("ADDED", "new")
	if got := ev.pod(t); got.ResourceVersion != p.ResourceVersion || got.Kind != "Pod" || got.APIVersion != "v1" {
		t.Fatalf("event object %+v", got.TypeMeta)
	}
	env.mustDo(200, "PATCH", "/api/v1/namespaces/ns/pods/new", `{"metadata":{"labels":{"a":"b"}}}`, "Content-Type", "application/merge-patch+json")
	if got := w.expect("MODIFIED", "new").pod(t); got.Labels["a"] != "b" {
		t.Fatalf("modified %+v", got.Labels)
	}
	env.mustDo(200, "DELETE", "/api/v1/namespaces/ns/pods/new", "")
	del := w.expect("DELETED", "new").pod(t)
	if rv, _ := strconv.ParseInt(del.ResourceVersion, 10, 64); rv <= 0 {
		t.Fatalf("deleted rv %q", del.ResourceVersion)
	}
	// Other namespaces are not seen.
	env.createNamespace("other")
	env.createPod("other", "x", "", "")
	w.expectQuiet(100 * time.Millisecond)
}

func TestWatchFromResourceVersionAndSelectors(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	p := env.createPod("ns", "p", "", "")
	env.createPod("ns", "q", `{"app":"web"}`, "")
	// From p's revision: q's creation is replayed, p's is not.
	w := env.watch("/api/v1/namespaces/ns/pods?watch=true&labelSelector=app%3Dweb&resourceVersion=" + p.ResourceVersion)
	w.expect("ADDED", "q")
	merge := func(name, patch string) {
		env.mustDo(200, "PATCH", "/api/v1/namespaces/ns/pods/"+name, patch, "Content-Type", "application/merge-patch+json")
	}
	merge("p", `{"metadata":{"labels":{"app":"web"}}}`) // moves in
	w.expect("ADDED", "p")
	merge("p", `{"metadata":{"labels":{"x":"1"}}}`) // stays in
	w.expect("MODIFIED", "p")
	merge("p", `{"metadata":{"labels":{"app":"db"}}}`) // moves out
	ev := w.expect("DELETED", "p")
	if got := ev.pod(t); got.Labels["app"] != "web" {
		t.Fatalf("moved-out object should be its last matching state: %v", got.Labels)
	}
	merge("p", `{"metadata":{"labels":{"y":"2"}}}`) // stays out
	w.expectQuiet(100 * time.Millisecond)

	fw := env.watch("/api/v1/pods?watch=1&fieldSelector=spec.nodeName%3Dn1&resourceVersion=" + ev.pod(t).ResourceVersion)
	env.mustDo(201, "POST", "/api/v1/namespaces/ns/pods/q/binding", `{"apiVersion":"v1","kind":"Binding","metadata":{"name":"q"},"target":{"name":"n1"}}`)
	fw.expect("ADDED", "q")
	env.mustDo(400, "GET", "/api/v1/pods?watch=1&fieldSelector=spec.bogus%3D1", "")

	// Legacy /watch/ path for one object.
	lw := env.watch("/api/v1/watch/namespaces/ns/pods/q?resourceVersion=" + ev.pod(t).ResourceVersion)
	merge("p", `{"metadata":{"labels":{"z":"3"}}}`)
	merge("q", `{"metadata":{"labels":{"z":"3"}}}`)
	lw.expect("MODIFIED", "q")
}

func TestWatchCompactedIsGone(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	p := env.createPod("ns", "p", "", "")
	env.createPod("ns", "q", "", "")
	head, _ := env.store.Revision(context.Background())
	_ = env.store.Compact(context.Background(), head)
	st := env.mustDo(410, "GET", "/api/v1/namespaces/ns/pods?watch=1&resourceVersion="+p.ResourceVersion, "").status(t)
	if st.Reason != metav1.StatusReasonExpired || !strings.Contains(st.Message, "too old resource version") {
		t.Fatalf("status %+v", st)
	}
}

func TestWatchInitialEventsAndBookmarks(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.BookmarkInterval = 50 * time.Millisecond })
	env.createNamespace("ns")
	env.createPod("ns", "a", "", "")
	env.createPod("ns", "b", "", "")
	head, _ := env.store.Revision(context.Background())
	w := env.watch("/api/v1/namespaces/ns/pods?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion=")
	w.expect("ADDED", "a")
	w.expect("ADDED", "b")
	bm := w.expect("BOOKMARK", "").pod(t)
	if bm.Annotations[initialEventsEnd] != "true" || bm.ResourceVersion != strconv.FormatInt(head, 10) {
		t.Fatalf("initial-events-end bookmark %+v", bm.ObjectMeta)
	}
	// Periodic bookmarks follow.
	bm = w.expect("BOOKMARK", "").pod(t)
	if bm.Annotations[initialEventsEnd] != "" || bm.ResourceVersion != strconv.FormatInt(head, 10) {
		t.Fatalf("periodic bookmark %+v", bm.ObjectMeta)
	}

	bad := []string{
		"sendInitialEvents=true&allowWatchBookmarks=true",                                    // no NotOlderThan
		"sendInitialEvents=true&resourceVersionMatch=NotOlderThan",                           // no bookmarks
		"resourceVersionMatch=NotOlderThan&resourceVersion=1",                                // match without sendInitialEvents
		"sendInitialEvents=maybe&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true", // not a bool
		"timeoutSeconds=x",
	}
	for _, q := range bad {
		env.mustDo(400, "GET", "/api/v1/namespaces/ns/pods?watch=1&"+q, "").status(t)
	}
	// sendInitialEvents=false with NotOlderThan: changes only.
	w2 := env.watch("/api/v1/namespaces/ns/pods?watch=1&sendInitialEvents=false&resourceVersionMatch=NotOlderThan&resourceVersion=" + strconv.FormatInt(head, 10))
	env.createPod("ns", "c", "", "")
	w2.expect("ADDED", "c")
}

func TestWatchTimeoutAndClose(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	w := env.watch("/api/v1/namespaces/ns/pods?watch=1&timeoutSeconds=1&resourceVersion=1")
	start := time.Now()
	w.expectEnd()
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("watch ended after %v", d)
	}
	w2 := env.watch("/api/v1/namespaces/ns/pods?watch=1&resourceVersion=1")
	_ = env.srv.Close()
	w2.expectEnd()
	_ = env.srv.Close() // idempotent
}

func TestWatchTable(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	env.createPod("ns", "a", "", "")
	env.createPod("ns", "b", "", "")
	w := env.watch("/api/v1/namespaces/ns/pods?watch=1", "Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
	for i, name := range []string{"a", "b"} {
		ev := w.next()
		var table metav1.Table
		if err := json.Unmarshal(ev.Object, &table); err != nil {
			t.Fatal(err)
		}
		if ev.Type != "ADDED" || table.Kind != "Table" || len(table.Rows) != 1 || table.Rows[0].Cells[0] != name {
			t.Fatalf("event %d: %s %s", i, ev.Type, ev.Object)
		}
		if (i == 0) != (len(table.ColumnDefinitions) > 0) {
			t.Fatalf("event %d: column definitions only on the first event: %d", i, len(table.ColumnDefinitions))
		}
		var meta metav1.PartialObjectMetadata
		if err := json.Unmarshal(table.Rows[0].Object.Raw, &meta); err != nil || meta.Kind != "PartialObjectMetadata" || meta.Name != name {
			t.Fatalf("row object %s", table.Rows[0].Object.Raw)
		}
	}
}

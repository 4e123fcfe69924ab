package record

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"kedge.dev/kedge/client"
)

// fakeWriter stores events like an API server would and logs each call.
type fakeWriter struct {
	events   map[string]*corev1.Event // ns/name
	calls    []string
	failNext error
}

func (f *fakeWriter) Create(_ context.Context, r client.Resource, obj client.Object, _ any) error {
	if err := f.failNext; err != nil {
		f.failNext = nil
		f.calls = append(f.calls, "create-failed")
		return err
	}
	ev := obj.(*corev1.Event).DeepCopy()
	f.events[r.Namespace+"/"+ev.Name] = ev
	f.calls = append(f.calls, fmt.Sprintf("create %s count=%d", ev.Reason, ev.Count))
	return nil
}

func (f *fakeWriter) Patch(_ context.Context, r client.Resource, name string, pt types.PatchType, data []byte, _ any, _ ...string) error {
	ev, ok := f.events[r.Namespace+"/"+name]
	if !ok {
		f.calls = append(f.calls, "patch-notfound")
		return apierrors.NewNotFound(schema.GroupResource{Resource: "events"}, name)
	}
	var p struct {
		Count         int32       `json:"count"`
		LastTimestamp metav1.Time `json:"lastTimestamp"`
	}
	if pt != types.MergePatchType {
		return fmt.Errorf("patch type %s", pt)
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	ev.Count, ev.LastTimestamp = p.Count, p.LastTimestamp
	f.calls = append(f.calls, fmt.Sprintf("patch %s count=%d", ev.Reason, ev.Count))
	return nil
}

func TestAggregation(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u1"}}
	type step struct {
		ref            corev1.ObjectReference
		reason, msg    string
		expireOnServer bool // delete every stored event before this step
		failCreate     bool
	}
	tests := []struct {
		name      string
		cacheSize int
		steps     []step
		want      []string
	}{
		{"repeat aggregates", 0, []step{
			{PodRef(pod, "c"), "BackOff", "back-off", false, false},
			{PodRef(pod, "c"), "BackOff", "back-off", false, false},
			{PodRef(pod, "c"), "BackOff", "back-off", false, false},
		}, []string{"create BackOff count=1", "patch BackOff count=2", "patch BackOff count=3"}},
		{"different message is a new event", 0, []step{
			{PodRef(pod, "c"), "Failed", "a", false, false},
			{PodRef(pod, "c"), "Failed", "b", false, false},
		}, []string{"create Failed count=1", "create Failed count=1"}},
		{"different container is a new event", 0, []step{
			{PodRef(pod, "a"), "Started", "x", false, false},
			{PodRef(pod, "b"), "Started", "x", false, false},
		}, []string{"create Started count=1", "create Started count=1"}},
		{"expired event is recreated with its count", 0, []step{
			{PodRef(pod, "c"), "BackOff", "m", false, false},
			{PodRef(pod, "c"), "BackOff", "m", true, false},
		}, []string{"create BackOff count=1", "patch-notfound", "create BackOff count=2"}},
		{"lru evicts", 1, []step{
			{PodRef(pod, "a"), "Started", "x", false, false},
			{PodRef(pod, "b"), "Started", "x", false, false},
			{PodRef(pod, "a"), "Started", "x", false, false},
		}, []string{"create Started count=1", "create Started count=1", "create Started count=1"}},
		{"failed create is retried", 0, []step{
			{PodRef(pod, "c"), "Killing", "m", false, true},
		}, []string{"create-failed", "create Killing count=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fw := &fakeWriter{events: map[string]*corev1.Event{}}
			clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			r, err := New(Config{Component: "kubelet", Host: "n1", CacheSize: tt.cacheSize, RetryDelay: time.Millisecond,
				Now: func() time.Time { clock = clock.Add(time.Second); return clock }}, fw)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.steps {
				if s.expireOnServer {
					fw.events = map[string]*corev1.Event{}
				}
				if s.failCreate {
					fw.failNext = fmt.Errorf("connection refused")
				}
				r.Event(s.ref, corev1.EventTypeNormal, s.reason, s.msg)
				p, ok := r.next()
				if !ok {
					t.Fatal("the event was not queued")
				}
				r.write(context.Background(), p)
			}
			if fmt.Sprint(fw.calls) != fmt.Sprint(tt.want) {
				t.Errorf("calls %v, want %v", fw.calls, tt.want)
			}
		})
	}
}

func TestEventShape(t *testing.T) {
	fw := &fakeWriter{events: map[string]*corev1.Event{}}
	r, err := New(Config{Component: "kubelet", Host: "n1"}, fw)
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", UID: "u1"},
		Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "init"}}}}
	r.Eventf(PodRef(pod, "init"), corev1.EventTypeWarning, "Failed", "Error: %s", "boom")
	r.Event(NodeRef("n1"), corev1.EventTypeNormal, "NodeReady", "Node n1 status is now: NodeReady")
	for p, ok := r.next(); ok; p, ok = r.next() {
		r.write(context.Background(), p)
	}
	if len(fw.events) != 2 {
		t.Fatalf("events %v", fw.calls)
	}
	for k, ev := range fw.events {
		if ev.Source.Component != "kubelet" || ev.Source.Host != "n1" || ev.Count != 1 || ev.FirstTimestamp.IsZero() || ev.LastTimestamp.IsZero() {
			t.Errorf("%s: bad event %+v", k, ev)
		}
		switch ev.Reason {
		case "Failed":
			if ev.Namespace != "prod" || ev.InvolvedObject.FieldPath != "spec.initContainers{init}" || ev.Message != "Error: boom" || ev.Type != "Warning" {
				t.Errorf("pod event %+v", ev)
			}
		case "NodeReady":
			if ev.Namespace != "default" || ev.InvolvedObject.Kind != "Node" {
				t.Errorf("node event %+v", ev)
			}
		}
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	r, err := New(Config{Component: "x"}, &fakeWriter{events: map[string]*corev1.Event{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestQueueFullDrops(t *testing.T) {
	r, err := New(Config{Component: "x", QueueSize: 1}, &fakeWriter{events: map[string]*corev1.Event{}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		r.Event(NodeRef("n"), "Normal", "A", "a")
		r.Event(NodeRef("n"), "Normal", "B", "b") // must not block
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Event blocked on a full queue")
	}
	if len(r.queue) != 1 {
		t.Fatalf("queue len %d", len(r.queue))
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := New(Config{}, nil); err == nil {
		t.Fatal("empty component accepted")
	}
}

// lockedWriter lets Run's goroutine and the test share a fakeWriter.
type lockedWriter struct {
	mu sync.Mutex
	fw *fakeWriter
}

func (l *lockedWriter) Create(ctx context.Context, r client.Resource, obj client.Object, opts any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fw.Create(ctx, r, obj, opts)
}

func (l *lockedWriter) Patch(ctx context.Context, r client.Resource, name string, pt types.PatchType, data []byte, out any, sub ...string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fw.Patch(ctx, r, name, pt, data, out, sub...)
}

func (l *lockedWriter) created() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.fw.events)
}

func TestRunWritesEventsQueuedBeforeAndWhileRunning(t *testing.T) {
	lw := &lockedWriter{fw: &fakeWriter{events: map[string]*corev1.Event{}}}
	r, err := New(Config{Component: "kubelet", Host: "n1"}, lw)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r.Event(NodeRef("n1"), corev1.EventTypeNormal, fmt.Sprintf("Before%d", i), "queued before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for i := range 2 {
		r.Event(NodeRef("n1"), corev1.EventTypeNormal, fmt.Sprintf("While%d", i), "queued while running")
	}
	deadline := time.Now().Add(5 * time.Second)
	for lw.created() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 5 events written", lw.created())
		}
		time.Sleep(time.Millisecond)
	}
	r.mu.Lock()
	q := r.queue
	r.mu.Unlock()
	if q != nil {
		t.Errorf("the drained queue still holds an array of %d", cap(q))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

package agent

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"kedge.dev/kedge/runtime"
	"kedge.dev/kedge/runtime/pull"
)

func TestDecidePull(t *testing.T) {
	tests := []struct {
		policy  corev1.PullPolicy
		image   string
		present bool
		want    pullAction
	}{
		{corev1.PullAlways, "nginx:1.27", true, pullImage},
		{corev1.PullAlways, "nginx:1.27", false, pullImage},
		{corev1.PullIfNotPresent, "nginx:1.27", true, useStored},
		{corev1.PullIfNotPresent, "nginx:1.27", false, pullImage},
		{corev1.PullNever, "nginx:1.27", true, useStored},
		{corev1.PullNever, "nginx:1.27", false, neverPull},
		// An empty policy gets Kubernetes' defaults: Always for :latest or no tag.
		{"", "nginx", true, pullImage},
		{"", "nginx:latest", true, pullImage},
		{"", "127.0.0.1:5000/app", true, pullImage},
		{"", "127.0.0.1:5000/app:1", true, useStored},
		{"", "nginx@sha256:" + strings.Repeat("a", 64), true, useStored},
	}
	for _, tt := range tests {
		if got := decidePull(tt.policy, tt.image, tt.present); got != tt.want {
			t.Errorf("decidePull(%q, %q, present=%v) = %v, want %v", tt.policy, tt.image, tt.present, got, tt.want)
		}
	}
}

func TestImagePullBackoff(t *testing.T) {
	var p imagePulls
	now := time.Unix(1000, 0)
	if w, _ := p.waiting("x", now); w {
		t.Fatal("back-off before any failure")
	}
	p.failed("x", "boom", now)
	for _, tt := range []struct {
		after time.Duration
		want  bool
	}{{0, true}, {9 * time.Second, true}, {10 * time.Second, false}} {
		if w, reason := p.waiting("x", now.Add(tt.after)); w != tt.want || (w && reason != "boom") {
			t.Errorf("waiting after %v = %v %q, want %v", tt.after, w, reason, tt.want)
		}
	}
	// Each failure doubles the delay up to the maximum.
	at := now.Add(10 * time.Second)
	for _, want := range []time.Duration{20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second} {
		p.failed("x", "boom", at)
		if w, _ := p.waiting("x", at.Add(want-time.Millisecond)); !w {
			t.Errorf("not waiting just before %v", want)
		}
		if w, _ := p.waiting("x", at.Add(want)); w {
			t.Errorf("still waiting after %v", want)
		}
		at = at.Add(want)
	}
	p.succeeded("x")
	if w, _ := p.waiting("x", at); w {
		t.Error("back-off survives a successful pull")
	}
}

// blockingPuller blocks until its context ends, like a pull of a large
// image over a slow link.
type blockingPuller struct{ started chan struct{} }

func (p *blockingPuller) PullImage(ctx context.Context, _ string, _ runtime.PullOptions) (runtime.Image, error) {
	select {
	case p.started <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return runtime.Image{}, ctx.Err()
}

func TestPodDeletedDuringPull(t *testing.T) {
	h := newHarness(t)
	p := &blockingPuller{started: make(chan struct{}, 1)}
	h.api.addPod(newPod("web", corev1.RestartPolicyAlways, "registry.local/slow:1"))
	h.startWithPuller(p)
	select {
	case <-p.started:
	case <-time.After(5 * time.Second):
		t.Fatal("pull did not start")
	}
	h.api.markDeleted("default", "web", 1)
	h.eventually("pod deleted while its image was pulling", func() bool { return h.api.pod("default", "web") == nil })
	if h.events.hasPrefix("Failed: Failed to pull image") {
		t.Errorf("a cancelled pull was reported as failed: %v", h.events.events)
	}
}

// fakePuller "pulls" by adding the image to the fake runtime, or fails.
type fakePuller struct {
	rt    *fakeRuntime
	mu    sync.Mutex
	calls int
	err   error
}

func (p *fakePuller) PullImage(_ context.Context, ref string, _ runtime.PullOptions) (runtime.Image, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.err != nil {
		return runtime.Image{}, p.err
	}
	p.rt.mu.Lock()
	p.rt.images[ref] = true
	p.rt.mu.Unlock()
	return runtime.Image{Names: []string{ref}, ID: "sha256:" + ref, Size: 1234}, nil
}

func (p *fakePuller) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

func (h *harness) startWithPuller(p imagePuller) {
	h.t.Helper()
	a, err := New(h.cfg, Deps{Runtime: h.rt, Sandboxes: h.sbs, Network: h.net, API: h.api, Events: h.events, Images: p})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.base = goruntime.NumGoroutine()
	h.agent, h.cancel, h.done = a, cancel, make(chan error, 1)
	go func() { h.done <- a.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

func (e *fakeEvents) hasPrefix(s string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.events {
		if strings.HasPrefix(ev, s) {
			return true
		}
	}
	return false
}

func TestPullMissingImage(t *testing.T) {
	h := newHarness(t)
	p := &fakePuller{rt: h.rt}
	h.api.addPod(newPod("web", corev1.RestartPolicyAlways, "registry.local/app:1"))
	h.startWithPuller(p)
	h.eventually("running", func() bool { return h.status("web").Phase == corev1.PodRunning })
	if !h.events.has(`Pulling: Pulling image "registry.local/app:1"`) ||
		!h.events.hasPrefix(`Pulled: Successfully pulled image "registry.local/app:1" in `) {
		t.Errorf("events %v", h.events.events)
	}
	if p.count() != 1 {
		t.Errorf("pulled %d times, want once (IfNotPresent)", p.count())
	}
}

func TestPullNeverPolicy(t *testing.T) {
	h := newHarness(t)
	p := &fakePuller{rt: h.rt}
	pod := newPod("web", corev1.RestartPolicyAlways, "registry.local/app:1")
	pod.Spec.Containers[0].ImagePullPolicy = corev1.PullNever
	h.api.addPod(pod)
	h.startWithPuller(p)
	h.eventually("ErrImageNeverPull", func() bool {
		cs := h.status("web").ContainerStatuses
		return len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == "ErrImageNeverPull"
	})
	if p.count() != 0 {
		t.Errorf("policy Never pulled %d times", p.count())
	}
}

func TestPullAlwaysPolicy(t *testing.T) {
	h := newHarness(t, "registry.local/app:latest")
	p := &fakePuller{rt: h.rt}
	h.api.addPod(newPod("web", corev1.RestartPolicyAlways, "registry.local/app:latest"))
	h.startWithPuller(p)
	h.eventually("running", func() bool { return h.status("web").Phase == corev1.PodRunning })
	if p.count() != 1 {
		t.Errorf(":latest with a stored image pulled %d times, want once (Always)", p.count())
	}
}

func TestPullAlwaysOfflineUsesStoredImage(t *testing.T) {
	for _, tt := range []struct {
		name    string
		err     error
		running bool
	}{
		{"registry unreachable", fmt.Errorf("resolve: %w: dial tcp: no such host", pull.ErrRegistry), true},
		{"registry denies", fmt.Errorf("resolve: %w: 401", pull.ErrUnauthorized), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "registry.local/app:latest")
			p := &fakePuller{rt: h.rt, err: tt.err}
			h.api.addPod(newPod("web", corev1.RestartPolicyAlways, "registry.local/app:latest"))
			h.startWithPuller(p)
			if tt.running {
				h.eventually("running", func() bool { return h.status("web").Phase == corev1.PodRunning })
				if !h.events.hasPrefix(`Failed: Failed to pull image "registry.local/app:latest": resolve: registry error`) {
					t.Errorf("events %v", h.events.events)
				}
				return
			}
			h.eventually("ErrImagePull", func() bool { return h.events.has("Failed: Error: ErrImagePull") })
			if h.status("web").Phase == corev1.PodRunning {
				t.Error("a denied pull ran the stored image")
			}
		})
	}
}

func TestPullFailureBacksOff(t *testing.T) {
	h := newHarness(t)
	p := &fakePuller{rt: h.rt, err: errors.New("registry said 401 Unauthorized")}
	h.api.addPod(newPod("web", corev1.RestartPolicyAlways, "registry.local/app:1"))
	h.startWithPuller(p)
	waiting := func(reason string) func() bool {
		return func() bool {
			cs := h.status("web").ContainerStatuses
			return len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == reason
		}
	}
	h.eventually("ErrImagePull", func() bool { return h.events.has("Failed: Error: ErrImagePull") })
	h.eventually("ImagePullBackOff", waiting("ImagePullBackOff"))
	st := h.status("web")
	if m := st.ContainerStatuses[0].State.Waiting.Message; m != `Back-off pulling image "registry.local/app:1": ErrImagePull: registry said 401 Unauthorized` {
		t.Errorf("back-off message %q", m)
	}
	if !h.events.has(`Failed: Failed to pull image "registry.local/app:1": registry said 401 Unauthorized`) ||
		!h.events.has("Failed: Error: ErrImagePull") || !h.events.has(`BackOff: Back-off pulling image "registry.local/app:1"`) ||
		!h.events.has("Failed: Error: ImagePullBackOff") {
		t.Errorf("events %v", h.events.events)
	}
	// Syncs every 300ms do not pull again within the 10s back-off.
	time.Sleep(time.Second)
	if p.count() != 1 {
		t.Errorf("pulled %d times within the back-off, want 1", p.count())
	}
}

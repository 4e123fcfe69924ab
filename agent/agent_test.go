package agent

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"kedge.dev/kedge/agent/kubeletapi"
	"kedge.dev/kedge/runtime/sandbox"
)

type harness struct {
	t      *testing.T
	api    *fakeAPI
	rt     *fakeRuntime
	sbs    *fakeSandboxes
	net    *fakeNetwork
	events *fakeEvents
	agent  *Agent
	cfg    Config
	cancel context.CancelFunc
	done   chan error
	base   int // goroutines before the agent started
}

func newHarness(t *testing.T, images ...string) *harness {
	t.Helper()
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.NodeName, cfg.DataDir, cfg.PodLogDir, cfg.NodeIP = "n1", dir, filepath.Join(dir, "logs"), "192.0.2.10"
	cfg.DisableEndpoint, cfg.ServerNode = true, true
	cfg.SyncPeriod, cfg.HeartbeatPeriod, cfg.RelistPeriod = 300*time.Millisecond, 100*time.Millisecond, 20*time.Millisecond
	cfg.ResolvConf = filepath.Join(dir, "resolv.conf")
	os.WriteFile(cfg.ResolvConf, []byte("nameserver 192.0.2.53\n"), 0o644)
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return &harness{t: t, api: newFakeAPI(), rt: newFakeRuntime(images...),
		sbs: &fakeSandboxes{sbs: map[string]sandbox.Sandbox{}}, net: &fakeNetwork{ips: map[string]net.IP{}},
		events: &fakeEvents{}, cfg: cfg}
}

func (h *harness) start() {
	h.t.Helper()
	a, err := New(h.cfg, Deps{Runtime: h.rt, Sandboxes: h.sbs, Network: h.net, API: h.api, Events: h.events})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.base = goruntime.NumGoroutine()
	h.agent, h.cancel, h.done = a, cancel, make(chan error, 1)
	go func() { h.done <- a.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Fatal("Run did not return")
	}
	if err := h.agent.Close(); err != nil {
		h.t.Errorf("Close: %v", err)
	}
	if err := h.agent.Close(); err != nil {
		h.t.Errorf("second Close: %v", err)
	}
	h.cancel = nil
	// Every goroutine the agent started is gone (timers of the fake watch
	// may take a moment to unwind).
	deadline := time.Now().Add(5 * time.Second)
	for goruntime.NumGoroutine() > h.base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := goruntime.NumGoroutine(); n > h.base {
		buf := make([]byte, 1<<16)
		h.t.Errorf("%d goroutines leaked:\n%s", n-h.base, buf[:goruntime.Stack(buf, true)])
	}
}

// eventually polls cond for up to 10 s.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("timed out waiting for %s", what)
}

func (h *harness) status(name string) corev1.PodStatus {
	if p := h.api.pod("default", name); p != nil {
		return p.Status
	}
	return corev1.PodStatus{}
}

func newPod(name string, policy corev1.RestartPolicy, image string, command ...string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{NodeName: "n1", RestartPolicy: policy,
			Containers: []corev1.Container{{Name: "app", Image: image, Command: command}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBestEffort},
	}
}

func cond(st corev1.PodStatus, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range st.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

func TestNodeRegistration(t *testing.T) {
	h := newHarness(t)
	h.start()
	var node *corev1.Node
	h.eventually("node registered with status", func() bool {
		h.api.mu.Lock()
		defer h.api.mu.Unlock()
		if n := h.api.nodes["n1"]; n != nil && len(n.Status.Conditions) > 0 {
			node = n.DeepCopy()
			return true
		}
		return false
	})
	if node.Labels[LabelHostname] != "n1" || node.Labels[LabelOS] != "linux" || node.Labels[LabelArch] == "" {
		t.Errorf("labels %v", node.Labels)
	}
	if _, ok := node.Labels[LabelControlPlane]; !ok {
		t.Errorf("control-plane label missing: %v", node.Labels)
	}
	st := node.Status
	if q := st.Capacity[corev1.ResourcePods]; q.Value() != 110 {
		t.Errorf("pods capacity %v", q)
	}
	if st.Capacity.Cpu().IsZero() || st.Capacity.Memory().IsZero() || st.Allocatable.Cpu().IsZero() {
		t.Errorf("capacity %v allocatable %v", st.Capacity, st.Allocatable)
	}
	if st.NodeInfo.ContainerRuntimeVersion != "kedge://dev" || st.NodeInfo.KubeletVersion != "v1.34.2" ||
		st.NodeInfo.OperatingSystem != "linux" || st.NodeInfo.KernelVersion == "" || st.NodeInfo.OSImage == "" {
		t.Errorf("nodeInfo %+v", st.NodeInfo)
	}
	if len(st.Addresses) != 2 || st.Addresses[0].Address != "192.0.2.10" || st.Addresses[1].Type != corev1.NodeHostName {
		t.Errorf("addresses %+v", st.Addresses)
	}
	var ready *corev1.NodeCondition
	for i := range st.Conditions {
		if st.Conditions[i].Type == corev1.NodeReady {
			ready = &st.Conditions[i]
		} else if st.Conditions[i].Status != corev1.ConditionFalse {
			t.Errorf("condition %+v", st.Conditions[i])
		}
	}
	if ready == nil || ready.Status != corev1.ConditionTrue || ready.Reason != "KubeletReady" || ready.Message != "kubelet is posting ready status" {
		t.Fatalf("ready condition %+v", ready)
	}
	h.eventually("NodeReady event", func() bool { return h.events.has("NodeReady: Node n1 status is now: NodeReady") })
	first := ready.LastHeartbeatTime
	h.eventually("heartbeat", func() bool {
		h.api.mu.Lock()
		defer h.api.mu.Unlock()
		for _, c := range h.api.nodes["n1"].Status.Conditions {
			if c.Type == corev1.NodeReady && c.LastHeartbeatTime.After(first.Time) {
				return true
			}
		}
		return false
	})
}

func TestPodLifecycle(t *testing.T) {
	h := newHarness(t, "busybox")
	h.api.addPod(newPod("web", corev1.RestartPolicyAlways, "busybox"))
	h.start()

	h.eventually("pod Running", func() bool {
		st := h.status("web")
		return st.Phase == corev1.PodRunning && cond(st, corev1.PodReady) == corev1.ConditionTrue
	})
	st := h.status("web")
	cs := st.ContainerStatuses[0]
	if cs.ContainerID != "kedge://uid-web-app-0" || cs.State.Running == nil || !cs.Ready || cs.ImageID != "sha256:busybox" {
		t.Errorf("container status %+v", cs)
	}
	if st.PodIP == "" || !strings.HasPrefix(st.PodIP, "10.42.0.") || st.HostIP != "192.0.2.10" || st.StartTime == nil {
		t.Errorf("status %+v", st)
	}
	for _, e := range []string{`Pulled: Container image "busybox" already present on machine`, "Created: Created container: app", "Started: Started container app"} {
		if !h.events.has(e) {
			t.Errorf("missing event %q in %v", e, h.events.events)
		}
	}
	if _, err := os.Stat(filepath.Join(h.cfg.DataDir, "agent", "pods", "uid-web", "etc-hosts")); err != nil {
		t.Errorf("pod files: %v", err)
	}

	// First crash: restarted at once.
	if !h.rt.exit("uid-web-app-0", 1) {
		t.Fatal("container not running")
	}
	h.eventually("restart 1 running", func() bool {
		cs := h.status("web").ContainerStatuses
		return len(cs) == 1 && cs[0].RestartCount == 1 && cs[0].State.Running != nil
	})
	if lt := h.status("web").ContainerStatuses[0].LastTerminationState.Terminated; lt == nil || lt.ExitCode != 1 {
		t.Errorf("last state %+v", lt)
	}
	// Second crash: CrashLoopBackOff for 10 s.
	h.rt.exit("uid-web-app-1", 2)
	h.eventually("CrashLoopBackOff", func() bool {
		cs := h.status("web").ContainerStatuses
		return len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == "CrashLoopBackOff"
	})
	w := h.status("web").ContainerStatuses[0].State.Waiting
	if w.Message != "back-off 10s restarting failed container=app pod=web_default(uid-web)" {
		t.Errorf("waiting message %q", w.Message)
	}
	if !h.events.has("BackOff: Back-off restarting failed container app in pod web_default(uid-web)") {
		t.Errorf("no BackOff event in %v", h.events.events)
	}

	// Graceful deletion: containers stopped with the grace period, then
	// everything removed and the pod deleted with grace 0 and its UID.
	h.api.markDeleted("default", "web", 7)
	h.eventually("pod deleted", func() bool { return h.api.pod("default", "web") == nil })
	if ids := h.rt.ids(); len(ids) != 0 {
		t.Errorf("containers left: %v", ids)
	}
	if h.sbs.count() != 0 || h.net.count() != 0 {
		t.Errorf("sandboxes %d networks %d left", h.sbs.count(), h.net.count())
	}
	h.api.mu.Lock()
	last := h.api.deletes[len(h.api.deletes)-1]
	h.api.mu.Unlock()
	if last.GracePeriodSeconds == nil || *last.GracePeriodSeconds != 0 || last.Preconditions == nil || *last.Preconditions.UID != "uid-web" {
		t.Errorf("delete options %+v", last)
	}
	for _, p := range []string{filepath.Join(h.cfg.DataDir, "agent", "pods", "uid-web"), filepath.Join(h.cfg.PodLogDir, "default_web_uid-web")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind", p)
		}
	}
	h.eventually("worker gone", func() bool {
		known, _ := h.agent.knownPods()
		return len(known) == 0
	})
}

func TestGracePeriodUsedOnDeletion(t *testing.T) {
	h := newHarness(t, "busybox")
	h.api.addPod(newPod("web", corev1.RestartPolicyAlways, "busybox"))
	h.start()
	h.eventually("running", func() bool { return h.status("web").Phase == corev1.PodRunning })
	h.api.markDeleted("default", "web", 7)
	h.eventually("pod deleted", func() bool { return h.api.pod("default", "web") == nil })
	h.rt.mu.Lock()
	defer h.rt.mu.Unlock()
	if g := h.rt.stopGrace["uid-web-app-0"]; g != 7*time.Second {
		t.Errorf("stop grace %v, want 7s", g)
	}
}

func TestImageNotPresent(t *testing.T) {
	h := newHarness(t) // no images
	h.api.addPod(newPod("web", corev1.RestartPolicyAlways, "nginx"))
	h.start()
	h.eventually("ErrImageNeverPull", func() bool {
		cs := h.status("web").ContainerStatuses
		return len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == "ErrImageNeverPull"
	})
	st := h.status("web")
	if st.Phase != corev1.PodPending || st.ContainerStatuses[0].State.Waiting.Message != `Container image "nginx" is not present with pull policy of Never` {
		t.Errorf("status %+v", st)
	}
	if !h.events.has("Failed: Error: ErrImageNeverPull") ||
		!h.events.has(`ErrImageNeverPull: Container image "nginx" is not present with pull policy of Never; load it on the node with "kedge image import <file>"`) {
		t.Errorf("events %v", h.events.events)
	}
	// Importing the image lets the next sync start the container.
	h.rt.mu.Lock()
	h.rt.images["nginx"] = true
	h.rt.mu.Unlock()
	h.eventually("running after import", func() bool { return h.status("web").Phase == corev1.PodRunning })
}

func TestNeverRestartSucceeds(t *testing.T) {
	h := newHarness(t, "busybox")
	h.api.addPod(newPod("job", corev1.RestartPolicyNever, "busybox"))
	h.start()
	h.eventually("running", func() bool { return h.status("job").Phase == corev1.PodRunning })
	h.rt.exit("uid-job-app-0", 0)
	h.eventually("Succeeded", func() bool { return h.status("job").Phase == corev1.PodSucceeded })
	tm := h.status("job").ContainerStatuses[0].State.Terminated
	if tm == nil || tm.Reason != "Completed" || tm.ExitCode != 0 {
		t.Errorf("terminated %+v", tm)
	}
	h.eventually("sandbox released", func() bool { return h.sbs.count() == 0 && h.net.count() == 0 })
	if n := len(h.rt.ids()); n != 1 {
		t.Errorf("finished container should be kept for its logs, have %d", n)
	}
}

func TestStartError(t *testing.T) {
	h := newHarness(t, "busybox")
	h.api.addPod(newPod("bad", corev1.RestartPolicyNever, "busybox", "fail-start"))
	h.start()
	h.eventually("Failed", func() bool { return h.status("bad").Phase == corev1.PodFailed })
	tm := h.status("bad").ContainerStatuses[0].State.Terminated
	if tm == nil || tm.Reason != "StartError" || tm.ExitCode != 128 || !strings.Contains(tm.Message, "executable file not found") {
		t.Errorf("terminated %+v", tm)
	}
	found := false
	h.events.mu.Lock()
	for _, e := range h.events.events {
		found = found || strings.HasPrefix(e, `Failed: Error: failed to start container "app"`)
	}
	h.events.mu.Unlock()
	if !found {
		t.Errorf("no Failed event in %v", h.events.events)
	}
}

func TestVanishedPodIsCleanedUp(t *testing.T) {
	h := newHarness(t, "busybox")
	h.api.addPod(newPod("web", corev1.RestartPolicyAlways, "busybox"))
	h.start()
	h.eventually("running", func() bool { return h.status("web").Phase == corev1.PodRunning })
	h.api.removePod("default", "web")
	h.eventually("cleaned up", func() bool { return len(h.rt.ids()) == 0 && h.sbs.count() == 0 && h.net.count() == 0 })
}

func TestOfflineRestartKeepsPods(t *testing.T) {
	h := newHarness(t, "busybox")
	h.api.addPod(newPod("web", corev1.RestartPolicyAlways, "busybox"))
	h.start()
	h.eventually("running", func() bool { return h.status("web").Phase == corev1.PodRunning })
	h.stop()

	// The server is gone; a new agent runs the cached pod and adopts its
	// container instead of creating another.
	h.api.mu.Lock()
	h.api.down = true
	h.api.mu.Unlock()
	h.rt.mu.Lock()
	created := h.rt.created
	h.rt.mu.Unlock()
	h.start()
	h.eventually("sandbox ensured again", func() bool { return h.sbs.count() == 1 })
	// A crash while offline is still restarted.
	h.rt.exit("uid-web-app-0", 1)
	h.eventually("restarted offline", func() bool {
		c, err := h.rt.ContainerStatus(context.Background(), "uid-web-app-1")
		return err == nil && c.State == "running"
	})
	h.rt.mu.Lock()
	defer h.rt.mu.Unlock()
	if h.rt.created != created+1 {
		t.Errorf("created %d containers offline, want 1 (the restart)", h.rt.created-created)
	}
}

func TestLogLocator(t *testing.T) {
	h := newHarness(t, "busybox")
	h.api.addPod(newPod("web", corev1.RestartPolicyOnFailure, "busybox"))
	h.start()
	h.eventually("running", func() bool { return h.status("web").Phase == corev1.PodRunning })
	loc := logLocator{h.agent}
	ctx := context.Background()
	if _, err := loc.ContainerLog(ctx, "default", "web", "app", true); !errors.Is(err, kubeletapi.ErrNotFound) {
		t.Errorf("previous of first instance: %v", err)
	}
	if _, err := loc.ContainerLog(ctx, "default", "nope", "app", false); !errors.Is(err, kubeletapi.ErrNotFound) {
		t.Errorf("unknown pod: %v", err)
	}
	tgt, err := loc.ContainerLog(ctx, "default", "web", "app", false)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(h.cfg.PodLogDir, "default_web_uid-web", "app", "0.log"); tgt.Path != want {
		t.Errorf("path %s, want %s", tgt.Path, want)
	}
	select {
	case <-tgt.Done:
		t.Fatal("Done closed while running")
	default:
	}
	h.rt.exit("uid-web-app-0", 3)
	select {
	case <-tgt.Done:
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after exit")
	}
	h.eventually("restarted", func() bool {
		cs := h.status("web").ContainerStatuses
		return len(cs) == 1 && cs[0].RestartCount == 1
	})
	prev, err := loc.ContainerLog(ctx, "default", "web", "app", true)
	if err != nil || !strings.HasSuffix(prev.Path, "/app/0.log") {
		t.Fatalf("previous: %+v %v", prev, err)
	}
	select {
	case <-prev.Done:
	default:
		t.Error("Done of an exited instance not closed")
	}
}

package podsync

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func testPod(policy corev1.RestartPolicy, containers ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u1"},
		Spec:       corev1.PodSpec{RestartPolicy: policy, NodeName: "n1"},
	}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "busybox"})
	}
	return p
}

func withInit(p *corev1.Pod, names ...string) *corev1.Pod {
	for _, n := range names {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: n, Image: "busybox"})
	}
	return p
}

func running(name string, attempt int) Container {
	return Container{ID: fmt.Sprintf("u1-%s-%d", name, attempt), Name: name, Attempt: attempt, State: StateRunning,
		StartedAt: t0.Add(-time.Minute)}
}

func exited(name string, attempt, code int, finished time.Time) Container {
	return Container{ID: fmt.Sprintf("u1-%s-%d", name, attempt), Name: name, Attempt: attempt, State: StateExited,
		ExitCode: code, StartedAt: finished.Add(-time.Second), FinishedAt: finished}
}

func TestComputeActions(t *testing.T) {
	deleting := testPod(corev1.RestartPolicyAlways, "a")
	deleting.DeletionTimestamp = &metav1.Time{Time: t0}
	changed := testPod(corev1.RestartPolicyAlways, "a")
	staleHash := running("a", 0)
	staleHash.Hash = "old"
	sameHash := running("a", 0)
	sameHash.Hash = HashContainer(&changed.Spec.Containers[0])

	// backoff with one restart recorded 5 s ago for container a
	bo := func() *Backoff {
		b := NewBackoff(DefaultBackoffInitial, DefaultBackoffMax)
		b.Next("u1/a", t0.Add(-5*time.Second))
		return b
	}
	tests := []struct {
		name    string
		pod     *corev1.Pod
		obs     Observed
		backoff *Backoff
		want    Actions
	}{
		{"new pod: sandbox and all containers in order", testPod("Always", "a", "b"), Observed{},
			nil, Actions{EnsureSandbox: true, Start: []Start{{Name: "a"}, {Name: "b"}}}},
		{"all running: nothing", testPod("Always", "a", "b"),
			Observed{SandboxReady: true, Containers: []Container{running("a", 0), running("b", 0)}},
			nil, Actions{}},
		{"after agent restart: ensure sandbox again, keep containers", testPod("Always", "a"),
			Observed{Containers: []Container{running("a", 0)}},
			nil, Actions{EnsureSandbox: true}},
		{"first crash restarts at once", testPod("Always", "a"),
			Observed{SandboxReady: true, Containers: []Container{exited("a", 0, 1, t0.Add(-time.Second))}},
			nil, Actions{Start: []Start{{Name: "a", Attempt: 1}}}},
		{"second crash waits in CrashLoopBackOff", testPod("Always", "a"),
			Observed{SandboxReady: true, Containers: []Container{exited("a", 1, 1, t0.Add(-2*time.Second)), exited("a", 0, 1, t0.Add(-6*time.Second))}},
			bo(), Actions{Requeue: 8 * time.Second, Waiting: map[string]Waiting{"a": {Reason: "CrashLoopBackOff",
				Message: "back-off 10s restarting failed container=a pod=web_default(u1)"}}}},
		{"back-off over: restart", testPod("Always", "a"),
			Observed{SandboxReady: true, Containers: []Container{exited("a", 1, 1, t0.Add(-11*time.Second)), exited("a", 0, 1, t0.Add(-20*time.Second))}},
			bo(), Actions{Start: []Start{{Name: "a", Attempt: 2}}}},
		{"Always restarts a success too", testPod("Always", "a"),
			Observed{SandboxReady: true, Containers: []Container{exited("a", 0, 0, t0)}},
			nil, Actions{Start: []Start{{Name: "a", Attempt: 1}}}},
		{"OnFailure restarts a failure", testPod("OnFailure", "a", "b"),
			Observed{SandboxReady: true, Containers: []Container{exited("a", 0, 0, t0), exited("b", 0, 2, t0)}},
			nil, Actions{Start: []Start{{Name: "b", Attempt: 1}}}},
		{"Never with one exit and one running: nothing", testPod("Never", "a", "b"),
			Observed{SandboxReady: true, Containers: []Container{exited("a", 0, 3, t0), running("b", 0)}},
			nil, Actions{}},
		{"Never all exited: terminal, tear down", testPod("Never", "a"),
			Observed{SandboxReady: true, Containers: []Container{exited("a", 0, 3, t0)}},
			nil, Actions{KillPod: true}},
		{"deleting: kill running", deleting,
			Observed{SandboxReady: true, Containers: []Container{running("a", 2), exited("a", 1, 1, t0)}},
			nil, Actions{KillPod: true, Kill: []Kill{{ID: "u1-a-2", Name: "a", Reason: "pod is terminating"}}}},
		{"old instances removed, previous kept", testPod("Always", "a"),
			Observed{SandboxReady: true, Containers: []Container{exited("a", 0, 1, t0), exited("a", 1, 1, t0), running("a", 2)}},
			nil, Actions{Remove: []string{"u1-a-0"}}},
		{"container no longer in spec", testPod("Always", "a"),
			Observed{SandboxReady: true, Containers: []Container{running("a", 0), running("gone", 0), exited("old", 0, 0, t0)}},
			nil, Actions{Kill: []Kill{{ID: "u1-gone-0", Name: "gone", Reason: "container is not in the pod spec"}}, Remove: []string{"u1-old-0"}}},
		{"created but never started is replaced", testPod("Always", "a"),
			Observed{SandboxReady: true, Containers: []Container{{ID: "u1-a-0", Name: "a", State: StateCreated}}},
			nil, Actions{Remove: []string{"u1-a-0"}, Start: []Start{{Name: "a", Attempt: 1}}}},
		{"spec hash changed: kill and start next attempt", changed,
			Observed{SandboxReady: true, Containers: []Container{staleHash}},
			nil, Actions{Kill: []Kill{{ID: "u1-a-0", Name: "a", Reason: "Container a definition changed, will be restarted"}},
				Start: []Start{{Name: "a", Attempt: 1}}}},
		{"same hash: nothing", changed, Observed{SandboxReady: true, Containers: []Container{sameHash}}, nil, Actions{}},
		{"init first, alone", withInit(testPod("Always", "a"), "i1", "i2"), Observed{},
			nil, Actions{EnsureSandbox: true, Start: []Start{{Name: "i1", Init: true}}}},
		{"init running: wait", withInit(testPod("Always", "a"), "i1", "i2"),
			Observed{SandboxReady: true, Containers: []Container{running("i1", 0)}}, nil, Actions{}},
		{"init done: next init", withInit(testPod("Always", "a"), "i1", "i2"),
			Observed{SandboxReady: true, Containers: []Container{exited("i1", 0, 0, t0)}},
			nil, Actions{Start: []Start{{Name: "i2", Init: true}}}},
		{"inits done: app containers", withInit(testPod("Always", "a"), "i1"),
			Observed{SandboxReady: true, Containers: []Container{exited("i1", 0, 0, t0)}},
			nil, Actions{Start: []Start{{Name: "a"}}}},
		{"init failed, OnFailure: restart init", withInit(testPod("OnFailure", "a"), "i1"),
			Observed{SandboxReady: true, Containers: []Container{exited("i1", 0, 1, t0)}},
			nil, Actions{Start: []Start{{Name: "i1", Attempt: 1, Init: true}}}},
		{"init failed, Never: pod failed", withInit(testPod("Never", "a"), "i1"),
			Observed{SandboxReady: true, Containers: []Container{exited("i1", 0, 1, t0)}},
			nil, Actions{KillPod: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.backoff
			if b == nil {
				b = NewBackoff(DefaultBackoffInitial, DefaultBackoffMax)
			}
			got := ComputeActions(tt.pod, tt.obs, b, t0)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestBackoffSequence(t *testing.T) {
	b := NewBackoff(DefaultBackoffInitial, DefaultBackoffMax)
	now := t0
	var delays []time.Duration
	// A container that crashes right after each start: each restart happens
	// as soon as its back-off allows.
	for i := 0; i < 8; i++ {
		finished := now
		wait, _ := b.Wait("k", finished, now)
		now = now.Add(wait)
		delays = append(delays, wait)
		b.Next("k", now)
	}
	want := []time.Duration{0, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second,
		160 * time.Second, 300 * time.Second, 300 * time.Second}
	if !reflect.DeepEqual(delays, want) {
		t.Fatalf("delays %v, want %v", delays, want)
	}
	// After running 10 min (2×max) without a restart, it starts over.
	now = now.Add(11 * time.Minute)
	if wait, _ := b.Wait("k", now, now); wait != 0 {
		t.Fatalf("wait after long run = %v", wait)
	}
	b.Next("k", now)
	if wait, delay := b.Wait("k", now, now); wait != 10*time.Second || delay != 10*time.Second {
		t.Fatalf("after reset wait=%v delay=%v", wait, delay)
	}
	b.Forget("k")
	if wait, _ := b.Wait("k", now, now); wait != 0 {
		t.Fatal("Forget kept the entry")
	}
}

func TestComputePhase(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.Pod
		obs  []Container
		want corev1.PodPhase
	}{
		{"nothing yet", testPod("Always", "a"), nil, corev1.PodPending},
		{"one running one waiting", testPod("Always", "a", "b"), []Container{running("a", 0)}, corev1.PodPending},
		{"all running", testPod("Always", "a", "b"), []Container{running("a", 0), running("b", 0)}, corev1.PodRunning},
		{"running and exited", testPod("Never", "a", "b"), []Container{running("a", 0), exited("b", 0, 1, t0)}, corev1.PodRunning},
		{"Always all exited", testPod("Always", "a"), []Container{exited("a", 0, 0, t0)}, corev1.PodRunning},
		{"Never all succeeded", testPod("Never", "a", "b"), []Container{exited("a", 0, 0, t0), exited("b", 0, 0, t0)}, corev1.PodSucceeded},
		{"Never one failed", testPod("Never", "a", "b"), []Container{exited("a", 0, 0, t0), exited("b", 0, 1, t0)}, corev1.PodFailed},
		{"OnFailure all succeeded", testPod("OnFailure", "a"), []Container{exited("a", 2, 0, t0)}, corev1.PodSucceeded},
		{"OnFailure failed restarting", testPod("OnFailure", "a"), []Container{exited("a", 0, 1, t0)}, corev1.PodRunning},
		{"init pending", withInit(testPod("Always", "a"), "i"), []Container{running("i", 0)}, corev1.PodPending},
		{"init failed Never", withInit(testPod("Never", "a"), "i"), []Container{exited("i", 0, 1, t0)}, corev1.PodFailed},
		{"init failed Always", withInit(testPod("Always", "a"), "i"), []Container{exited("i", 0, 1, t0)}, corev1.PodPending},
		{"init done", withInit(testPod("Always", "a"), "i"), []Container{exited("i", 0, 0, t0), running("a", 0)}, corev1.PodRunning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ComputePhase(tt.pod, Observed{Containers: tt.obs}); got != tt.want {
				t.Errorf("phase %s, want %s", got, tt.want)
			}
		})
	}
	terminal := testPod("Always", "a")
	terminal.Status.Phase = corev1.PodFailed
	if got := ComputePhase(terminal, Observed{Containers: []Container{running("a", 0)}}); got != corev1.PodFailed {
		t.Errorf("terminal phase changed to %s", got)
	}
}

func condMap(st corev1.PodStatus) map[corev1.PodConditionType]string {
	m := map[corev1.PodConditionType]string{}
	for _, c := range st.Conditions {
		m[c.Type] = string(c.Status) + "/" + c.Reason
	}
	return m
}

func TestComputeStatus(t *testing.T) {
	crash := map[string]Waiting{"a": {Reason: "CrashLoopBackOff", Message: "back-off 10s restarting failed container=a pod=web_default(u1)"}}
	never := map[string]Waiting{"a": {Reason: "ErrImageNeverPull", Message: `Container image "busybox" is not present with pull policy of Never`}}
	tests := []struct {
		name    string
		pod     *corev1.Pod
		obs     Observed
		waiting map[string]Waiting
		check   func(t *testing.T, st corev1.PodStatus)
	}{
		{"running", testPod("Always", "a"), Observed{SandboxReady: true, PodIP: "10.42.0.5", Containers: []Container{
			exited("a", 0, 1, t0.Add(-time.Minute)), func() Container { c := running("a", 1); c.ImageID = "sha256:abc"; return c }()}}, nil,
			func(t *testing.T, st corev1.PodStatus) {
				cs := st.ContainerStatuses[0]
				if st.Phase != corev1.PodRunning || st.PodIP != "10.42.0.5" || len(st.PodIPs) != 1 || st.HostIP != "192.0.2.1" {
					t.Errorf("status %+v", st)
				}
				if cs.State.Running == nil || !cs.Ready || !*cs.Started || cs.RestartCount != 1 ||
					cs.ContainerID != "kedge://u1-a-1" || cs.ImageID != "sha256:abc" || cs.Image != "busybox" {
					t.Errorf("container status %+v", cs)
				}
				if lt := cs.LastTerminationState.Terminated; lt == nil || lt.ExitCode != 1 || lt.Reason != "Error" {
					t.Errorf("last state %+v", cs.LastTerminationState)
				}
				want := map[corev1.PodConditionType]string{"PodReadyToStartContainers": "True/", "Initialized": "True/",
					"Ready": "True/", "ContainersReady": "True/", "PodScheduled": "True/"}
				if got := condMap(st); !reflect.DeepEqual(got, want) {
					t.Errorf("conditions %v", got)
				}
				if st.QOSClass != corev1.PodQOSBestEffort || st.StartTime == nil {
					t.Errorf("qos %s start %v", st.QOSClass, st.StartTime)
				}
			}},
		{"crash loop", testPod("Always", "a"), Observed{SandboxReady: true, Containers: []Container{exited("a", 1, 2, t0)}}, crash,
			func(t *testing.T, st corev1.PodStatus) {
				cs := st.ContainerStatuses[0]
				if st.Phase != corev1.PodRunning || cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" ||
					cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 2 || cs.Ready || cs.RestartCount != 1 {
					t.Errorf("status %+v / %+v", st.Phase, cs)
				}
				if c := condMap(st); c["Ready"] != "False/ContainersNotReady" {
					t.Errorf("conditions %v", c)
				}
			}},
		{"image missing", testPod("Always", "a"), Observed{SandboxReady: true}, never,
			func(t *testing.T, st corev1.PodStatus) {
				w := st.ContainerStatuses[0].State.Waiting
				if st.Phase != corev1.PodPending || w == nil || w.Reason != "ErrImageNeverPull" || w.Message != never["a"].Message {
					t.Errorf("status %+v", st)
				}
				for _, c := range st.Conditions {
					if c.Type == corev1.PodReady && c.Message != "containers with unready status: [a]" {
						t.Errorf("ready message %q", c.Message)
					}
				}
			}},
		{"start error", testPod("Never", "a"), Observed{SandboxReady: true, Containers: []Container{{ID: "u1-a-0", Name: "a", State: StateExited,
			ExitCode: 128, Reason: "StartError", Message: "exec: not found", FinishedAt: t0}}}, nil,
			func(t *testing.T, st corev1.PodStatus) {
				tm := st.ContainerStatuses[0].State.Terminated
				if st.Phase != corev1.PodFailed || tm == nil || tm.Reason != "StartError" || tm.ExitCode != 128 || tm.Message != "exec: not found" {
					t.Errorf("status %+v", st)
				}
				if c := condMap(st); c["Ready"] != "False/PodCompleted" || c["PodReadyToStartContainers"] != "False/" {
					t.Errorf("conditions %v", c)
				}
			}},
		{"succeeded", testPod("OnFailure", "a"), Observed{SandboxReady: true, Containers: []Container{exited("a", 0, 0, t0)}}, nil,
			func(t *testing.T, st corev1.PodStatus) {
				tm := st.ContainerStatuses[0].State.Terminated
				if st.Phase != corev1.PodSucceeded || tm.Reason != "Completed" {
					t.Errorf("status %+v", st)
				}
			}},
		{"initializing", withInit(testPod("Always", "a"), "i"), Observed{SandboxReady: true, Containers: []Container{running("i", 0)}}, nil,
			func(t *testing.T, st corev1.PodStatus) {
				if st.ContainerStatuses[0].State.Waiting.Reason != "PodInitializing" || st.InitContainerStatuses[0].State.Running == nil {
					t.Errorf("status %+v", st)
				}
				if c := condMap(st); c["Initialized"] != "False/ContainersNotInitialized" {
					t.Errorf("conditions %v", c)
				}
			}},
		{"host network uses host IP", func() *corev1.Pod { p := testPod("Always", "a"); p.Spec.HostNetwork = true; return p }(),
			Observed{SandboxReady: true}, nil,
			func(t *testing.T, st corev1.PodStatus) {
				if st.PodIP != "192.0.2.1" || st.ContainerStatuses[0].State.Waiting.Reason != "ContainerCreating" {
					t.Errorf("status %+v", st)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := ComputeStatus(StatusInput{Pod: tt.pod, Observed: tt.obs, Waiting: tt.waiting, HostIP: "192.0.2.1", Now: t0})
			tt.check(t, st)
		})
	}
}

func TestConditionTransitionTimeKept(t *testing.T) {
	pod := testPod("Always", "a")
	obs := Observed{SandboxReady: true, Containers: []Container{running("a", 0)}}
	st1 := ComputeStatus(StatusInput{Pod: pod, Observed: obs, Now: t0})
	pod.Status = st1
	st2 := ComputeStatus(StatusInput{Pod: pod, Observed: obs, Now: t0.Add(time.Hour)})
	if !reflect.DeepEqual(st1, st2) {
		t.Fatalf("status changed without a change:\n%+v\n%+v", st1, st2)
	}
	obs.Containers = []Container{exited("a", 0, 1, t0.Add(time.Hour))}
	st3 := ComputeStatus(StatusInput{Pod: pod, Observed: obs, Now: t0.Add(time.Hour)})
	for _, c := range st3.Conditions {
		moved := !c.LastTransitionTime.Time.Equal(t0)
		if changed := c.Type == corev1.PodReady || c.Type == corev1.ContainersReady; changed != moved {
			t.Errorf("condition %s transition time %v", c.Type, c.LastTransitionTime)
		}
	}
}

func TestQOSClass(t *testing.T) {
	rl := func(cpu, mem string) corev1.ResourceList {
		l := corev1.ResourceList{}
		if cpu != "" {
			l[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			l[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		return l
	}
	tests := []struct {
		req, lim corev1.ResourceList
		want     corev1.PodQOSClass
	}{
		{nil, nil, corev1.PodQOSBestEffort},
		{rl("100m", ""), nil, corev1.PodQOSBurstable},
		{rl("1", "1Gi"), rl("1", "1Gi"), corev1.PodQOSGuaranteed},
		{nil, rl("1", "1Gi"), corev1.PodQOSGuaranteed},
		{rl("500m", "1Gi"), rl("1", "1Gi"), corev1.PodQOSBurstable},
	}
	for i, tt := range tests {
		p := testPod("Always", "a")
		p.Spec.Containers[0].Resources = corev1.ResourceRequirements{Requests: tt.req, Limits: tt.lim}
		if got := QOSClass(p); got != tt.want {
			t.Errorf("%d: %s, want %s", i, got, tt.want)
		}
	}
}

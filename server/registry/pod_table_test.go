package registry

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The cases and expected cells are Kubernetes' own (TestPrintPod,
// TestPrintPodWithRestartableInitContainer and TestPrintPodwide in
// pkg/printers/internalversion/printers_test.go), with the test's
// time.Now() replaced by a fixed clock.
func TestPodTableRow(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }
	deleted := ago(10 * time.Second)
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	waiting := func(reason string) corev1.ContainerState {
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
	}
	terminated := func(reason string, code int32) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code}}
	}
	lastTerm := func(d time.Duration) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: ago(d)}}
	}
	always := corev1.ContainerRestartPolicyAlways
	sidecars := []corev1.Container{
		{Name: "restartable-init-1", RestartPolicy: &always},
		{Name: "restartable-init-2", RestartPolicy: &always},
	}
	yes, no := true, false
	day := 24 * time.Hour

	tests := []struct {
		name string
		pod  corev1.Pod
		want []interface{}
	}{{
		name: "restarts and readiness",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "test1"},
			Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
			Status: corev1.PodStatus{Phase: "podPhase", ContainerStatuses: []corev1.ContainerStatus{
				{Ready: true, RestartCount: 3, State: running}, {RestartCount: 3}}},
		},
		want: []interface{}{"test1", "1/2", "podPhase", "6", "<unknown>"},
	}, {
		name: "container waiting reason overrides phase",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "test2"},
			Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
			Status: corev1.PodStatus{Phase: "podPhase", ContainerStatuses: []corev1.ContainerStatus{
				{Ready: true, RestartCount: 3, State: running}, {State: waiting("ContainerWaitingReason"), RestartCount: 3}}},
		},
		want: []interface{}{"test2", "1/2", "ContainerWaitingReason", "6", "<unknown>"},
	}, {
		name: "first container's reason wins",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "test3"},
			Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
			Status: corev1.PodStatus{Phase: "podPhase", ContainerStatuses: []corev1.ContainerStatus{
				{State: waiting("ContainerWaitingReason"), RestartCount: 3},
				{State: terminated("ContainerTerminatedReason", 0), RestartCount: 3}}},
		},
		want: []interface{}{"test3", "0/2", "ContainerWaitingReason", "6", "<unknown>"},
	}, {
		name: "pod reason overrides phase",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "test5"},
			Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
			Status: corev1.PodStatus{Reason: "podReason", Phase: "podPhase", ContainerStatuses: []corev1.ContainerStatus{
				{Ready: true, RestartCount: 3, State: running}, {Ready: true, RestartCount: 3}}},
		},
		want: []interface{}{"test5", "1/2", "podReason", "6", "<unknown>"},
	}, {
		name: "one completed one running, not ready",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "test6"},
			Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
			Status: corev1.PodStatus{Phase: "Running", ContainerStatuses: []corev1.ContainerStatus{
				{Ready: true, RestartCount: 3, State: terminated("Completed", 0)}, {Ready: true, RestartCount: 3, State: running}}},
		},
		want: []interface{}{"test6", "1/2", "NotReady", "6", "<unknown>"},
	}, {
		name: "one completed one running, ready",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "test6"},
			Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
			Status: corev1.PodStatus{Phase: "Running",
				ContainerStatuses: []corev1.ContainerStatus{
					{Ready: true, RestartCount: 3, State: terminated("Completed", 0)}, {Ready: true, RestartCount: 3, State: running}},
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
		},
		want: []interface{}{"test6", "1/2", "Running", "6", "<unknown>"},
	}, {
		name: "init container restarting",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "test7"},
			Spec:       corev1.PodSpec{InitContainers: make([]corev1.Container, 1), Containers: make([]corev1.Container, 1)},
			Status: corev1.PodStatus{Phase: "podPhase",
				InitContainerStatuses: []corev1.ContainerStatus{{RestartCount: 3, State: running, LastTerminationState: lastTerm(10 * time.Second)}},
				ContainerStatuses:     []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}}}},
		},
		want: []interface{}{"test7", "0/1", "Init:0/1", "3 (10s ago)", "<unknown>"},
	}, {
		name: "second init container restarting after a completed one with restarts",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "test10"},
			Spec:       corev1.PodSpec{InitContainers: make([]corev1.Container, 2), Containers: make([]corev1.Container, 1)},
			Status: corev1.PodStatus{Phase: "podPhase",
				InitContainerStatuses: []corev1.ContainerStatus{
					{RestartCount: 2, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}, LastTerminationState: lastTerm(2 * time.Minute)},
					{RestartCount: 3, State: running, LastTerminationState: lastTerm(10 * time.Second)}},
				ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}}}},
		},
		want: []interface{}{"test10", "0/1", "Init:1/2", "5 (10s ago)", "<unknown>"},
	}, {
		name: "init done, only main container restarts count",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "test11"},
			Spec:       corev1.PodSpec{InitContainers: make([]corev1.Container, 1), Containers: make([]corev1.Container, 1)},
			Status: corev1.PodStatus{Phase: "Running",
				InitContainerStatuses: []corev1.ContainerStatus{
					{RestartCount: 2, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}, LastTerminationState: lastTerm(2 * time.Minute)}},
				ContainerStatuses: []corev1.ContainerStatus{{RestartCount: 4, State: running, LastTerminationState: lastTerm(20 * time.Second)}}},
		},
		want: []interface{}{"test11", "0/1", "Running", "4 (20s ago)", "<unknown>"},
	}, {
		name: "latest of two restarts",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "test14"},
			Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
			Status: corev1.PodStatus{Phase: "Running", ContainerStatuses: []corev1.ContainerStatus{
				{Ready: true, RestartCount: 6, State: running, LastTerminationState: lastTerm(5 * day)},
				{Ready: true, RestartCount: 3, State: running, LastTerminationState: lastTerm(20 * day)}}},
		},
		want: []interface{}{"test14", "2/2", "Running", "9 (5d ago)", "<unknown>"},
	}, {
		name: "scheduling gated",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "test15"},
			Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
			Status: corev1.PodStatus{Phase: "podPhase", Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated}}},
		},
		want: []interface{}{"test15", "0/2", "SchedulingGated", "0", "<unknown>"},
	}, {
		name: "failed",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "test17"},
			Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 1)},
			Status:     corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{{State: terminated("Error", 1)}}},
		},
		want: []interface{}{"test17", "0/1", "Error", "0", "<unknown>"},
	}, {
		name: "succeeded stays Completed while deleted",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "test18", DeletionTimestamp: &deleted},
			Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 1)},
			Status:     corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{State: terminated("Completed", 0)}}},
		},
		want: []interface{}{"test18", "0/1", "Completed", "0", "<unknown>"},
	}, {
		name: "running pod being deleted is Terminating",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "test19", DeletionTimestamp: &deleted},
			Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 1)},
			Status:     corev1.PodStatus{Phase: "Running", ContainerStatuses: []corev1.ContainerStatus{{State: running}}},
		},
		want: []interface{}{"test19", "0/1", "Terminating", "0", "<unknown>"},
	}, {
		name: "lost node while deleted is Unknown",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "lost", DeletionTimestamp: &deleted},
			Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 1)},
			Status:     corev1.PodStatus{Phase: "Running", Reason: "NodeLost"},
		},
		want: []interface{}{"lost", "0/1", "Unknown", "0", "<unknown>"},
	}, {
		name: "init container failed without reason",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "initfail"},
			Spec:       corev1.PodSpec{InitContainers: make([]corev1.Container, 1), Containers: make([]corev1.Container, 1)},
			Status: corev1.PodStatus{Phase: "Pending",
				InitContainerStatuses: []corev1.ContainerStatus{{State: terminated("", 2)}}},
		},
		want: []interface{}{"initfail", "0/1", "Init:ExitCode:2", "0", "<unknown>"},
	}, {
		name: "init container crash looping",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "initloop"},
			Spec:       corev1.PodSpec{InitContainers: make([]corev1.Container, 1), Containers: make([]corev1.Container, 1)},
			Status: corev1.PodStatus{Phase: "Pending",
				InitContainerStatuses: []corev1.ContainerStatus{{State: waiting("CrashLoopBackOff")}}},
		},
		want: []interface{}{"initloop", "0/1", "Init:CrashLoopBackOff", "0", "<unknown>"},
	}, {
		name: "container killed by signal",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "sig"},
			Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 1)},
			Status: corev1.PodStatus{Phase: "Running", ContainerStatuses: []corev1.ContainerStatus{
				{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Signal: 9}}}}},
		},
		want: []interface{}{"sig", "0/1", "Signal:9", "0", "<unknown>"},
	}, {
		name: "sidecars: first running, not started",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "test1"},
			Spec:       corev1.PodSpec{InitContainers: sidecars, Containers: make([]corev1.Container, 1)},
			Status: corev1.PodStatus{Phase: "Pending",
				InitContainerStatuses: []corev1.ContainerStatus{
					{Name: "restartable-init-1", RestartCount: 3, State: running, Started: &no, LastTerminationState: lastTerm(10 * time.Second)},
					{Name: "restartable-init-2", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}, Started: &no}},
				ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}}},
				Conditions:        []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionFalse}}},
		},
		want: []interface{}{"test1", "0/3", "Init:0/2", "3 (10s ago)", "<unknown>"},
	}, {
		name: "sidecars started, main running",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "test2"},
			Spec:       corev1.PodSpec{InitContainers: sidecars, Containers: make([]corev1.Container, 1)},
			Status: corev1.PodStatus{Phase: "Running",
				InitContainerStatuses: []corev1.ContainerStatus{
					{Name: "restartable-init-1", RestartCount: 3, State: running, Started: &yes, LastTerminationState: lastTerm(10 * time.Second)},
					{Name: "restartable-init-2", State: running, Started: &yes}},
				ContainerStatuses: []corev1.ContainerStatus{{Ready: true, RestartCount: 4, State: running, LastTerminationState: lastTerm(20 * time.Second)}},
				Conditions:        []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}}},
		},
		want: []interface{}{"test2", "1/3", "Running", "7 (10s ago)", "<unknown>"},
	}, {
		name: "sidecars failed, main completed",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "test3"},
			Spec:       corev1.PodSpec{InitContainers: sidecars, Containers: make([]corev1.Container, 1)},
			Status: corev1.PodStatus{Phase: "Succeeded",
				InitContainerStatuses: []corev1.ContainerStatus{
					{Name: "restartable-init-1", RestartCount: 3, State: terminated("Error", 137), Started: &no, LastTerminationState: lastTerm(10 * time.Second)},
					{Name: "restartable-init-2", State: terminated("Error", 137), Started: &no}},
				ContainerStatuses: []corev1.ContainerStatus{{RestartCount: 4, State: terminated("Completed", 0), LastTerminationState: lastTerm(20 * time.Second)}},
				Conditions:        []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}}},
		},
		want: []interface{}{"test3", "0/3", "Completed", "7 (10s ago)", "<unknown>"},
	}, {
		name: "statuses of unknown containers",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "test4"},
			Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "init1"}, {Name: "sidecar1", RestartPolicy: &always}},
				Containers:     []corev1.Container{{Name: "container1"}},
			},
			Status: corev1.PodStatus{Phase: "Running",
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "initinvalid"}, {Name: "init1"}, {Name: "sidecar1"}},
				ContainerStatuses:     []corev1.ContainerStatus{{Name: "containerinvalid"}, {Name: "container1"}}},
		},
		want: []interface{}{"test4", "0/2", "Init:0/2", "0", "<unknown>"},
	}, {
		name: "age",
		pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "aged", CreationTimestamp: ago(200 * time.Second)},
			Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 1)},
			Status:     corev1.PodStatus{Phase: corev1.PodPending},
		},
		want: []interface{}{"aged", "0/1", "Pending", "0", "3m20s"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PodTableRow(&tt.pod, now)
			if len(got) != 9 {
				t.Fatalf("got %d cells, want 9", len(got))
			}
			if !reflect.DeepEqual(got[:5], tt.want) {
				t.Errorf("cells = %#v, want %#v", got[:5], tt.want)
			}
		})
	}
}

func TestPodTableRowWide(t *testing.T) {
	pod := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "test1"},
		Spec: corev1.PodSpec{
			Containers: make([]corev1.Container, 2),
			NodeName:   "test1",
			ReadinessGates: []corev1.PodReadinessGate{
				{ConditionType: "condition1"}, {ConditionType: "condition2"}, {ConditionType: "condition3"}},
		},
		Status: corev1.PodStatus{
			Conditions: []corev1.PodCondition{
				{Type: "condition1", Status: corev1.ConditionFalse}, {Type: "condition2", Status: corev1.ConditionTrue}},
			Phase:             "podPhase",
			PodIPs:            []corev1.PodIP{{IP: "1.1.1.1"}, {IP: "2001:db8::"}},
			ContainerStatuses: []corev1.ContainerStatus{{Ready: true, RestartCount: 3, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}, {RestartCount: 3}},
			NominatedNodeName: "node1",
		},
	}
	want := []interface{}{"test1", "1/2", "podPhase", "6", "<unknown>", "1.1.1.1", "test1", "node1", "1/3"}
	if got := PodTableRow(&pod, time.Now()); !reflect.DeepEqual(got, want) {
		t.Errorf("cells = %#v, want %#v", got, want)
	}
	empty := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test2"}, Spec: corev1.PodSpec{Containers: make([]corev1.Container, 2)}}
	got := PodTableRow(&empty, time.Now())
	if want := []interface{}{"<none>", "<none>", "<none>", "<none>"}; !reflect.DeepEqual(got[5:], want) {
		t.Errorf("wide cells = %#v, want %#v", got[5:], want)
	}
}

func TestHumanAge(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		ago  time.Duration
		want string
	}{
		{5 * time.Second, "5s"},
		{119 * time.Second, "119s"},
		{200 * time.Second, "3m20s"},
		{10 * time.Minute, "10m"},
		{5*time.Hour + 7*time.Minute, "5h7m"},
		{30 * time.Hour, "30h"},
		{2 * 24 * time.Hour, "2d"},
		{-10 * time.Second, "<invalid>"},
	}
	for _, tt := range tests {
		if got := HumanAge(metav1.NewTime(now.Add(-tt.ago)), now); got != tt.want {
			t.Errorf("HumanAge(%v ago) = %q, want %q", tt.ago, got, tt.want)
		}
	}
	if got := HumanAge(metav1.Time{}, now); got != "<unknown>" {
		t.Errorf("HumanAge(zero) = %q, want <unknown>", got)
	}
}

package podsync

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ContainerIDPrefix is the scheme of containerID in pod status.
const ContainerIDPrefix = "kedge://"

// ComputePhase computes a pod's phase from its containers the way kubelet's
// getPhase does. A terminal phase already reported is kept.
func ComputePhase(pod *corev1.Pod, obs Observed) corev1.PodPhase {
	if isTerminal(pod.Status.Phase) {
		return pod.Status.Phase
	}
	never := pod.Spec.RestartPolicy == corev1.RestartPolicyNever
	for _, c := range pod.Spec.InitContainers {
		latest := obs.latest(c.Name)
		if latest != nil && latest.State == StateExited && latest.ExitCode == 0 {
			continue
		}
		if latest != nil && latest.State == StateExited && never {
			return corev1.PodFailed
		}
		return corev1.PodPending
	}
	var waiting, running, stopped, succeeded, failed, unknown int
	for _, c := range pod.Spec.Containers {
		instances := obs.instances(c.Name)
		if len(instances) == 0 {
			waiting++
			continue
		}
		switch latest := instances[0]; latest.State {
		case StateRunning:
			running++
		case StateExited:
			stopped++
			if latest.ExitCode == 0 {
				succeeded++
			} else {
				failed++
			}
		case StateCreated:
			if len(instances) > 1 {
				stopped++ // restarting: it has a last termination state
			} else {
				waiting++
			}
		default:
			unknown++
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0 && unknown == 0:
		return corev1.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		if pod.Spec.RestartPolicy == corev1.RestartPolicyAlways || pod.Spec.RestartPolicy == "" {
			return corev1.PodRunning
		}
		if stopped == succeeded {
			return corev1.PodSucceeded
		}
		if never {
			return corev1.PodFailed
		}
		return corev1.PodRunning // OnFailure, restarting the failed ones
	default:
		return corev1.PodPending
	}
}

// StatusInput is what ComputeStatus reads besides the observed containers.
type StatusInput struct {
	// Pod is the desired pod with the status last reported (its conditions'
	// transition times and startTime are kept).
	Pod      *corev1.Pod
	Observed Observed
	// Waiting holds, per container name, why a container that is not running
	// waits (from Actions.Waiting and from the agent's own failures).
	Waiting map[string]Waiting
	HostIP  string
	Now     time.Time
}

// ComputeStatus computes the PodStatus to report.
func ComputeStatus(in StatusInput) corev1.PodStatus {
	pod, obs := in.Pod, in.Observed
	old := pod.Status
	now := mtime(in.Now)
	st := corev1.PodStatus{
		Phase:    ComputePhase(pod, obs),
		QOSClass: old.QOSClass,
		HostIP:   in.HostIP,
	}
	if st.QOSClass == "" {
		st.QOSClass = QOSClass(pod)
	}
	if in.HostIP != "" {
		st.HostIPs = []corev1.HostIP{{IP: in.HostIP}}
	}
	podIP := obs.PodIP
	if pod.Spec.HostNetwork {
		podIP = in.HostIP
	}
	if podIP != "" {
		st.PodIP = podIP
		st.PodIPs = []corev1.PodIP{{IP: podIP}}
	}
	st.StartTime = old.StartTime
	if st.StartTime == nil {
		st.StartTime = &now
	}

	initDone := true
	var incomplete []string
	for _, c := range pod.Spec.InitContainers {
		cs := containerStatus(&c, obs, in.Waiting, "PodInitializing")
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			initDone = false
			incomplete = append(incomplete, c.Name)
		}
	}
	var unready []string
	for _, c := range pod.Spec.Containers {
		defaultReason := "ContainerCreating"
		if !initDone {
			defaultReason = "PodInitializing"
		}
		cs := containerStatus(&c, obs, in.Waiting, defaultReason)
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		if !cs.Ready {
			unready = append(unready, c.Name)
		}
	}

	cond := func(t corev1.PodConditionType, ok bool, reason, msg string) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, LastTransitionTime: now, Reason: reason, Message: msg}
		if ok {
			c.Status, c.Reason, c.Message = corev1.ConditionTrue, "", ""
		}
		for _, o := range old.Conditions {
			if o.Type == t && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		return c
	}
	readyReason := "ContainersNotReady"
	readyMsg := fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		readyReason, readyMsg = "PodCompleted", ""
	}
	sandboxOK := obs.SandboxReady && !isTerminal(st.Phase)
	allReady := len(unready) == 0 && initDone && !isTerminal(st.Phase)
	st.Conditions = []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, sandboxOK, "", ""),
		cond(corev1.PodInitialized, initDone, "ContainersNotInitialized",
			fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(incomplete, " "))),
		cond(corev1.PodReady, allReady, readyReason, readyMsg),
		cond(corev1.ContainersReady, allReady, readyReason, readyMsg),
		cond(corev1.PodScheduled, true, "", ""),
	}
	return st
}

// containerStatus builds the status of one container from its instances.
func containerStatus(c *corev1.Container, obs Observed, waiting map[string]Waiting, defaultReason string) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image}
	instances := obs.instances(c.Name)
	w, hasWaiting := waiting[c.Name]
	if len(instances) == 0 {
		if !hasWaiting {
			w = Waiting{Reason: defaultReason}
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.Reason, Message: w.Message}
		cs.Started = ptr(false)
		return cs
	}
	latest := instances[0]
	cs.RestartCount = int32(latest.Attempt)
	cs.ContainerID = ContainerIDPrefix + latest.ID
	cs.ImageID = latest.ImageID
	if len(instances) > 1 && instances[1].State == StateExited {
		cs.LastTerminationState.Terminated = terminated(&instances[1])
	}
	switch latest.State {
	case StateRunning:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: mtime(latest.StartedAt)}
		cs.Ready, cs.Started = true, ptr(true)
	case StateExited:
		cs.Started = ptr(false)
		if hasWaiting {
			// Waiting to be restarted: the instance that ended is the last state.
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.Reason, Message: w.Message}
			cs.LastTerminationState = corev1.ContainerState{Terminated: terminated(&latest)}
		} else {
			cs.State.Terminated = terminated(&latest)
		}
	default: // created or unknown
		if !hasWaiting {
			w = Waiting{Reason: "ContainerCreating"}
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.Reason, Message: w.Message}
		cs.Started = ptr(false)
	}
	return cs
}

func terminated(c *Container) *corev1.ContainerStateTerminated {
	reason := c.Reason
	if reason == "" {
		reason = "Completed"
		if c.ExitCode != 0 {
			reason = "Error"
		}
	}
	return &corev1.ContainerStateTerminated{
		ExitCode:    int32(c.ExitCode),
		Reason:      reason,
		Message:     c.Message,
		StartedAt:   mtime(c.StartedAt),
		FinishedAt:  mtime(c.FinishedAt),
		ContainerID: ContainerIDPrefix + c.ID,
	}
}

// QOSClass computes a pod's quality-of-service class from its containers'
// requests and limits (Guaranteed: every container has equal cpu and memory
// requests and limits; BestEffort: none has any; Burstable otherwise).
func QOSClass(pod *corev1.Pod) corev1.PodQOSClass {
	all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	any, guaranteed := false, true
	for _, c := range all {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[r]
			lim, hasLim := c.Resources.Limits[r]
			if (hasReq && !req.IsZero()) || (hasLim && !lim.IsZero()) {
				any = true
			}
			if !hasLim || lim.IsZero() || (hasReq && req.Cmp(lim) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	default:
		return corev1.PodQOSBurstable
	}
}

// mtime converts t as the API stores it (UTC, whole seconds), so a status
// read back from the server compares equal to the one computed; the zero
// time stays zero (null).
func mtime(t time.Time) metav1.Time {
	if t.IsZero() {
		return metav1.Time{}
	}
	return metav1.NewTime(t.UTC().Truncate(time.Second))
}

func ptr[T any](v T) *T { return &v }

package podsync

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Start asks for a new instance of a container.
type Start struct {
	Name    string
	Attempt int  // the new instance's attempt (its restartCount)
	Init    bool // an init container: the next sync waits for it to finish
}

// Kill asks to stop a running instance.
type Kill struct {
	ID, Name string
	// Reason is for the Killing event's message.
	Reason string
}

// Actions is the outcome of one sync decision. The agent carries them out in
// field order: sandbox, kills, removals, starts.
type Actions struct {
	// EnsureSandbox asks for the pod's namespaces and network (idempotent,
	// adopts what exists).
	EnsureSandbox bool
	// KillPod asks to stop every instance and tear the sandbox and network
	// down, because the pod is being deleted or has reached a terminal phase.
	// Kill then lists the instances still running.
	KillPod bool
	Kill    []Kill
	// Remove lists exited instances no longer needed (older than the previous
	// one of each container, or of containers no longer in the spec).
	Remove []string
	// Start lists the instances to create and start, in order.
	Start []Start
	// Waiting lists containers held back by the restart back-off, with the
	// CrashLoopBackOff status to report.
	Waiting map[string]Waiting
	// Requeue is when the pod should be synced again at the latest because a
	// back-off ends; zero when no back-off is pending.
	Requeue time.Duration
}

// PodDesc formats a pod the way kubelet's messages do: name_namespace(uid).
func PodDesc(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

// ComputeActions decides what to do with a pod given what runs. It is pure:
// it reads the back-off but does not record restarts (the caller calls
// Backoff.Next for each Start with Attempt > 0 it carries out).
func ComputeActions(pod *corev1.Pod, obs Observed, bo *Backoff, now time.Time) Actions {
	var a Actions
	phase := ComputePhase(pod, obs)
	if pod.DeletionTimestamp != nil || isTerminal(pod.Status.Phase) || isTerminal(phase) {
		a.KillPod = true
		for _, c := range obs.Containers {
			if c.State == StateRunning || c.State == StateCreated || c.State == StateUnknown {
				a.Kill = append(a.Kill, Kill{ID: c.ID, Name: c.Name, Reason: "pod is terminating"})
			}
		}
		return a
	}
	if !obs.SandboxReady {
		a.EnsureSandbox = true
	}
	a.Remove, a.Kill = garbage(pod, obs)

	// Init containers run one at a time, each to success, before the others.
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		latest := obs.latest(c.Name)
		switch {
		case latest == nil:
			a.Start = append(a.Start, Start{Name: c.Name, Attempt: 0, Init: true})
			return a
		case latest.State == StateRunning || latest.State == StateUnknown:
			return a // wait for it
		case latest.State == StateExited && latest.ExitCode == 0:
			continue
		case latest.State == StateCreated:
			a.Remove = append(a.Remove, latest.ID)
			a.Start = append(a.Start, Start{Name: c.Name, Attempt: latest.Attempt + 1, Init: true})
			return a
		default: // failed
			if pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
				return a // the pod has failed; ComputePhase says so
			}
			a.restart(pod, c.Name, latest, bo, now, true)
			return a
		}
	}

	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		latest := obs.latest(c.Name)
		switch {
		case latest == nil:
			a.Start = append(a.Start, Start{Name: c.Name, Attempt: 0})
		case latest.State == StateRunning:
			if latest.Hash != "" && latest.Hash != HashContainer(c) {
				a.Kill = append(a.Kill, Kill{ID: latest.ID, Name: c.Name,
					Reason: fmt.Sprintf("Container %s definition changed, will be restarted", c.Name)})
				a.Start = append(a.Start, Start{Name: c.Name, Attempt: latest.Attempt + 1})
			}
		case latest.State == StateUnknown:
			// The runtime lost track of it; the next sync sees it again.
		case latest.State == StateCreated:
			// Created but never started (the agent stopped in between):
			// replace it by a fresh instance.
			a.Remove = append(a.Remove, latest.ID)
			a.Start = append(a.Start, Start{Name: c.Name, Attempt: latest.Attempt + 1})
		default: // exited
			if shouldRestart(pod.Spec.RestartPolicy, latest.ExitCode) {
				a.restart(pod, c.Name, latest, bo, now, false)
			}
		}
	}
	return a
}

// restart starts the next instance of name now, or holds it back in
// CrashLoopBackOff until its back-off ends.
func (a *Actions) restart(pod *corev1.Pod, name string, latest *Container, bo *Backoff, now time.Time, init bool) {
	wait, delay := bo.Wait(BackoffKey(pod, name), latest.FinishedAt, now)
	if wait <= 0 {
		a.Start = append(a.Start, Start{Name: name, Attempt: latest.Attempt + 1, Init: init})
		return
	}
	if a.Waiting == nil {
		a.Waiting = map[string]Waiting{}
	}
	a.Waiting[name] = Waiting{Reason: "CrashLoopBackOff",
		Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", delay, name, PodDesc(pod))}
	if a.Requeue == 0 || wait < a.Requeue {
		a.Requeue = wait
	}
}

// shouldRestart applies the restart policy to an exited container.
func shouldRestart(policy corev1.RestartPolicy, exitCode int) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	default: // Always, and the empty policy the API server defaults to Always
		return true
	}
}

// garbage returns exited instances to remove (all but the latest two of each
// container) and instances of containers no longer in the spec, which are
// killed if running and removed otherwise.
func garbage(pod *corev1.Pod, obs Observed) (remove []string, kill []Kill) {
	inSpec := map[string]bool{}
	for _, c := range pod.Spec.InitContainers {
		inSpec[c.Name] = true
	}
	for _, c := range pod.Spec.Containers {
		inSpec[c.Name] = true
	}
	seen := map[string]bool{}
	for _, c := range obs.Containers {
		if seen[c.Name] {
			continue
		}
		seen[c.Name] = true
		for i, in := range obs.instances(c.Name) {
			running := in.State == StateRunning || in.State == StateUnknown
			switch {
			case !inSpec[c.Name] && running:
				kill = append(kill, Kill{ID: in.ID, Name: in.Name, Reason: "container is not in the pod spec"})
			case !inSpec[c.Name]:
				remove = append(remove, in.ID)
			case i >= 2 && in.State == StateExited, i >= 1 && in.State == StateCreated:
				remove = append(remove, in.ID)
			}
		}
	}
	return remove, kill
}

func isTerminal(p corev1.PodPhase) bool {
	return p == corev1.PodSucceeded || p == corev1.PodFailed
}

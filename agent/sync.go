package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"kedge.dev/kedge/agent/podsync"
	"kedge.dev/kedge/client"
	"kedge.dev/kedge/client/record"
	"kedge.dev/kedge/runtime"
	"kedge.dev/kedge/runtime/sandbox"
)

// Labels the agent puts on its containers; they tie a container to its pod
// so that a restarted agent finds it again.
const (
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodName       = "io.kubernetes.pod.name"
	LabelContainerName = "io.kubernetes.container.name"
	LabelAttempt       = "io.kubernetes.container.restartCount"
	LabelHash          = "io.kubernetes.container.hash"
)

// maxTerminationMessage is how much of a termination-log is reported, as
// kubelet does.
const maxTerminationMessage = 4096

// podContainers returns the runtime's containers of pod uid.
func (a *Agent) podContainers(ctx context.Context, uid types.UID) ([]runtime.ContainerStatus, error) {
	all, err := a.rt.ListContainers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []runtime.ContainerStatus
	for _, c := range all {
		if c.Labels[LabelPodUID] == string(uid) {
			out = append(out, c)
		}
	}
	return out, nil
}

// observe returns the pod's observed state for podsync.
func (w *podWorker) observe(ctx context.Context) (podsync.Observed, error) {
	cs, err := w.a.podContainers(ctx, w.uid)
	if err != nil {
		return podsync.Observed{}, err
	}
	obs := podsync.Observed{SandboxReady: w.sandboxReady && !w.torndown, PodIP: w.podIP}
	for _, c := range cs {
		attempt, _ := strconv.Atoi(c.Labels[LabelAttempt])
		o := podsync.Container{
			ID: c.ID, Name: c.Labels[LabelContainerName], Attempt: attempt, Hash: c.Labels[LabelHash],
			State: podsync.State(c.State), ExitCode: c.ExitCode, Reason: c.Reason, Message: c.Message,
			CreatedAt: c.CreatedAt, StartedAt: c.StartedAt, FinishedAt: c.FinishedAt, ImageID: c.ImageID,
		}
		if c.State == runtime.StateExited {
			if msg := readTerminationMessage(w.a.terminationLogPath(w.uid, o.Name, attempt)); msg != "" {
				o.Message = msg
			}
		}
		obs.Containers = append(obs.Containers, o)
	}
	return obs, nil
}

// execute carries out plan; it reports whether anything was done that
// changes what observe returns.
func (w *podWorker) execute(ctx context.Context, pod *corev1.Pod, obs podsync.Observed, plan podsync.Actions) bool {
	acted := len(plan.Kill) > 0 || len(plan.Remove) > 0
	w.killContainers(ctx, pod, plan.Kill, !plan.KillPod)
	if plan.KillPod {
		w.a.podStopped(ctx, pod) // a finished pod no longer counts for its QoS cgroup
		if !w.torndown {
			if err := w.releaseSandbox(ctx, pod); err != nil {
				w.log.Warn("releasing the sandbox of a finished pod failed", "err", err)
			} else {
				w.torndown = true
			}
		}
		return acted
	}
	for _, id := range plan.Remove {
		w.removeContainer(ctx, obs, id)
	}
	if plan.EnsureSandbox {
		if err := w.ensureSandbox(ctx, pod); err != nil {
			w.log.Warn("pod sandbox not ready", "err", err)
			w.a.events.Event(record.PodRef(pod, ""), corev1.EventTypeWarning, "FailedCreatePodSandBox",
				"Failed to create pod sandbox: "+err.Error())
			return acted
		}
	}
	for _, s := range plan.Start {
		c := specContainer(pod, s.Name)
		if c == nil {
			continue
		}
		err := w.startContainer(ctx, pod, c, s.Attempt)
		acted = true
		if err != nil && s.Init {
			break // init containers run strictly in order
		}
	}
	return acted
}

// specContainer finds a container of the pod spec by name.
func specContainer(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	return nil
}

// ensureSandbox makes sure the pod's namespaces, network and files exist.
func (w *podWorker) ensureSandbox(ctx context.Context, pod *corev1.Pod) error {
	host := podHostname(pod)
	sb, err := w.a.sandbox.Ensure(ctx, sandbox.Spec{PodUID: string(pod.UID), Hostname: host, HostNetwork: pod.Spec.HostNetwork})
	if err != nil {
		return fmt.Errorf("ensure sandbox: %w", err)
	}
	ip := w.a.cfg.NodeIP
	if !pod.Spec.HostNetwork {
		addr, err := w.a.network.Attach(ctx, string(pod.UID), sb.NetNS)
		if err != nil {
			return fmt.Errorf("attach pod network: %w", err)
		}
		ip = addr.String()
	}
	if err := w.a.preparePodDir(pod, ip); err != nil {
		return err
	}
	w.sb, w.podIP, w.sandboxReady = sb, ip, true
	return nil
}

// releaseSandbox detaches the network and removes the namespaces.
func (w *podWorker) releaseSandbox(ctx context.Context, pod *corev1.Pod) error {
	var errs []error
	if !pod.Spec.HostNetwork {
		if err := w.a.network.Detach(ctx, string(pod.UID), w.sb.NetNS); err != nil {
			errs = append(errs, fmt.Errorf("detach pod network: %w", err))
		}
	}
	if err := w.a.sandbox.Remove(ctx, string(pod.UID)); err != nil {
		errs = append(errs, fmt.Errorf("remove sandbox: %w", err))
	}
	if len(errs) == 0 {
		w.sandboxReady = false
	}
	return errors.Join(errs...)
}

// startContainer creates and starts one instance, recording why it waits
// when it cannot.
func (w *podWorker) startContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, attempt int) error {
	ref := record.PodRef(pod, c.Name)
	ev := w.a.events
	if err := w.ensureImage(ctx, pod, c); err != nil {
		return err
	}

	spec, err := w.a.containerSpec(pod, c, attempt, w.podIP)
	if err != nil {
		w.waiting[c.Name] = podsync.Waiting{Reason: "CreateContainerConfigError", Message: err.Error()}
		ev.Event(ref, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		return err
	}
	spec.NetNS, spec.IPCNS, spec.UTSNS = w.sb.NetNS, w.sb.IPCNS, w.sb.UTSNS
	if err := w.a.ensurePodCgroup(ctx, pod, spec.CgroupParent); err != nil {
		w.waiting[c.Name] = podsync.Waiting{Reason: "CreateContainerError", Message: err.Error()}
		ev.Event(ref, corev1.EventTypeWarning, "Failed", "Error: pod cgroup: "+err.Error())
		return err
	}
	err = w.a.rt.CreateContainer(ctx, spec)
	if errors.Is(err, runtime.ErrContainerExists) {
		// A leftover of an earlier try with the same attempt: replace it.
		if rerr := w.a.rt.RemoveContainer(ctx, spec.ID); rerr == nil {
			err = w.a.rt.CreateContainer(ctx, spec)
		}
	}
	if errors.Is(err, runtime.ErrRunAsNonRoot) {
		// kubelet checks this while building the container's config.
		msg := fmt.Sprintf("%v (pod: %q, container: %s)", runtime.ErrRunAsNonRoot, pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")", c.Name)
		w.waiting[c.Name] = podsync.Waiting{Reason: "CreateContainerConfigError", Message: msg}
		ev.Event(ref, corev1.EventTypeWarning, "Failed", "Error: "+msg)
		return err
	}
	if err != nil {
		w.waiting[c.Name] = podsync.Waiting{Reason: "CreateContainerError", Message: err.Error()}
		ev.Event(ref, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		return err
	}
	delete(w.waiting, c.Name)
	ev.Event(ref, corev1.EventTypeNormal, "Created", "Created container: "+c.Name)
	if attempt > 0 {
		w.backoff.Next(podsync.BackoffKey(pod, c.Name), time.Now())
	}
	if err := w.a.rt.StartContainer(ctx, spec.ID); err != nil {
		// With ErrStartFailed the instance is exited with Reason StartError
		// and exit code 128: the restart policy and back-off handle it.
		ev.Event(ref, corev1.EventTypeWarning, "Failed", fmt.Sprintf("Error: failed to start container %q: %v", c.Name, err))
		return err
	}
	ev.Event(ref, corev1.EventTypeNormal, "Started", "Started container "+c.Name)
	return nil
}

// killContainers stops instances in parallel with the pod's grace period.
func (w *podWorker) killContainers(ctx context.Context, pod *corev1.Pod, kills []podsync.Kill, announce bool) {
	grace := gracePeriod(pod)
	var wg sync.WaitGroup
	for _, k := range kills {
		msg := "Stopping container " + k.Name
		if announce && k.Reason != "" {
			msg = k.Reason
		}
		w.a.events.Event(record.PodRef(pod, k.Name), corev1.EventTypeNormal, "Killing", msg)
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			if err := w.a.rt.StopContainer(ctx, id, grace); err != nil && !errors.Is(err, runtime.ErrContainerNotFound) {
				w.log.Warn("stopping container failed", "id", id, "err", err)
			}
		}(k.ID)
	}
	wg.Wait()
}

// removeContainer removes an instance and its log and termination files.
func (w *podWorker) removeContainer(ctx context.Context, obs podsync.Observed, id string) {
	if err := w.a.rt.RemoveContainer(ctx, id); err != nil {
		w.log.Warn("removing container failed", "id", id, "err", err)
		return
	}
	for _, c := range obs.Containers {
		if c.ID == id {
			w.a.removeInstanceFiles(w.pod, c.Name, c.Attempt)
		}
	}
}

// gracePeriod is how long a container gets between TERM and KILL.
func gracePeriod(pod *corev1.Pod) time.Duration {
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	default:
		return 30 * time.Second
	}
}

// reportStatus patches the pod status when it differs from what the API
// has.
func (w *podWorker) reportStatus(ctx context.Context, st corev1.PodStatus) {
	if w.sent != nil && apiequality.Semantic.DeepEqual(*w.sent, st) {
		return
	}
	body := map[string]any{"metadata": map[string]any{"uid": w.pod.UID}, "status": statusPatch(st)}
	data, err := json.Marshal(body)
	if err != nil {
		w.log.Error("encoding pod status failed", "err", err)
		return
	}
	err = w.a.api.Patch(ctx, client.Pods.In(w.pod.Namespace), w.pod.Name, types.MergePatchType, data, nil, "status")
	switch {
	case err == nil:
		w.sent = &st
	case apierrors.IsNotFound(err):
		// The pod is gone; the pod source tells the worker.
	default:
		w.a.logLimited("status-"+string(w.uid), "patching pod status failed", "pod", w.pod.Namespace+"/"+w.pod.Name, "err", err)
	}
}

// statusPatch encodes st for a JSON merge patch, with explicit nulls for
// the fields the agent owns but left empty, so stale values are cleared.
func statusPatch(st corev1.PodStatus) map[string]any {
	data, _ := json.Marshal(st)
	m := map[string]any{}
	_ = json.Unmarshal(data, &m)
	for _, k := range []string{"message", "reason", "podIP", "podIPs", "initContainerStatuses", "containerStatuses"} {
		if _, ok := m[k]; !ok {
			m[k] = nil
		}
	}
	return m
}

// terminate tears a deleted or vanished pod down and deletes it from the
// API; it returns finished once nothing of the pod is left.
func (w *podWorker) terminate(ctx context.Context) (time.Duration, bool) {
	pod := w.pod
	if !w.cleaned {
		if err := w.cleanup(ctx, pod); err != nil {
			w.a.logLimited("cleanup-"+string(w.uid), "cleaning up pod failed, will retry", "err", err)
			return 2 * time.Second, false
		}
		w.cleaned = true
	}
	if !w.isGone {
		zero := int64(0)
		uid := pod.UID
		err := w.a.api.Delete(ctx, client.Pods.In(pod.Namespace), pod.Name,
			metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			w.a.logLimited("delete-"+string(w.uid), "deleting pod failed, will retry", "err", err)
			return 5 * time.Second, false
		}
	}
	w.log.Info("pod removed")
	return 0, true
}

// cleanup stops and removes every container of the pod, its network,
// sandbox, directory and logs.
func (w *podWorker) cleanup(ctx context.Context, pod *corev1.Pod) error {
	cs, err := w.a.podContainers(ctx, pod.UID)
	if err != nil {
		return err
	}
	var kills []podsync.Kill
	for _, c := range cs {
		if c.State == runtime.StateRunning {
			kills = append(kills, podsync.Kill{ID: c.ID, Name: c.Labels[LabelContainerName]})
		}
	}
	if w.isGone {
		// No pod to report events on; stop quietly.
		for _, k := range kills {
			if err := w.a.rt.StopContainer(ctx, k.ID, gracePeriod(pod)); err != nil && !errors.Is(err, runtime.ErrContainerNotFound) {
				w.log.Warn("stopping container failed", "id", k.ID, "err", err)
			}
		}
	} else {
		w.killContainers(ctx, pod, kills, false)
	}
	for _, c := range cs {
		if err := w.a.rt.RemoveContainer(ctx, c.ID); err != nil {
			return fmt.Errorf("remove container %s: %w", c.ID, err)
		}
	}
	if err := w.releaseSandbox(ctx, pod); err != nil {
		return err
	}
	if err := w.a.removePodCgroup(ctx, pod); err != nil {
		return err
	}
	if err := w.a.removePodFiles(pod); err != nil {
		return err
	}
	w.backoff.Forget(string(pod.UID) + "/")
	return nil
}

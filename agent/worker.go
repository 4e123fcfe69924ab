package agent

import (
	"context"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"kedge.dev/kedge/agent/podsync"
	"kedge.dev/kedge/client/record"
	"kedge.dev/kedge/runtime/sandbox"
)

// podWorker owns one pod: its goroutine (run) is the only one that touches
// the fields below the mutex-guarded mailbox.
type podWorker struct {
	a   *Agent
	uid types.UID
	log *slog.Logger

	mu        sync.Mutex // guards the mailbox
	pending   *corev1.Pod
	apiStatus *corev1.PodStatus // status of the last pod read from the API
	gone      bool
	name      string // "<ns>/<name>"
	wake      chan struct{}

	// Owned by the run goroutine.
	pod          *corev1.Pod
	local        *corev1.PodStatus // last status computed
	sent         *corev1.PodStatus // last status known to be in the API
	isGone       bool
	sb           sandbox.Sandbox
	sandboxReady bool
	podIP        string
	torndown     bool // terminal pod: sandbox and network released
	cleaned      bool // deleted pod: everything removed
	waiting      map[string]podsync.Waiting
	backoff      *podsync.Backoff
	pulls        imagePulls // image pull back-off (image.go)
}

func newPodWorker(a *Agent, pod *corev1.Pod) *podWorker {
	return &podWorker{
		a: a, uid: pod.UID, name: pod.Namespace + "/" + pod.Name,
		log:     a.log.With("pod", pod.Namespace+"/"+pod.Name, "uid", string(pod.UID)),
		wake:    make(chan struct{}, 1),
		waiting: map[string]podsync.Waiting{},
		backoff: podsync.NewBackoff(podsync.DefaultBackoffInitial, podsync.DefaultBackoffMax),
	}
}

// update hands the worker the latest pod; only the latest is kept.
func (w *podWorker) update(pod *corev1.Pod, fromAPI bool) {
	w.mu.Lock()
	w.pending = pod
	if fromAPI {
		st := pod.Status
		w.apiStatus = &st
	}
	w.mu.Unlock()
	w.wakeUp()
}

// markGone tells the worker its pod is no longer in the API.
func (w *podWorker) markGone() {
	w.mu.Lock()
	w.gone = true
	w.mu.Unlock()
	w.wakeUp()
}

func (w *podWorker) wakeUp() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *podWorker) key() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.name
}

// run syncs the pod on every wake-up and timer until the pod is cleaned up
// or ctx ends (the agent stops; the pod keeps running).
func (w *podWorker) run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer.C:
		}
		w.takeMailbox()
		if w.pod == nil {
			continue
		}
		next, finished := w.sync(ctx)
		if finished {
			w.a.workerDone(w)
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// takeMailbox moves the pending pod into the worker's own state.
func (w *podWorker) takeMailbox() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending != nil {
		w.pod = w.pending.DeepCopy()
		w.pending = nil
		w.name = w.pod.Namespace + "/" + w.pod.Name
	}
	if w.apiStatus != nil {
		w.sent = w.apiStatus
		w.apiStatus = nil
	}
	w.isGone = w.gone
}

// podWithStatus returns the pod with the status the worker last computed
// (newer than the API's while the server is unreachable).
func (w *podWorker) podWithStatus() *corev1.Pod {
	p := w.pod.DeepCopy()
	if w.local != nil {
		p.Status = *w.local.DeepCopy()
	}
	return p
}

// sync runs one round for the pod; it returns when to run again, or
// finished when the pod is gone and cleaned up.
func (w *podWorker) sync(ctx context.Context) (next time.Duration, finished bool) {
	if w.isGone || w.pod.DeletionTimestamp != nil {
		return w.terminate(ctx)
	}
	now := time.Now()
	obs, err := w.observe(ctx)
	if err != nil {
		w.a.logLimited("observe", "listing containers failed", "err", err)
		return w.a.cfg.RelistPeriod * 5, false
	}
	pod := w.podWithStatus()
	plan := podsync.ComputeActions(pod, obs, w.backoff, now)
	if w.execute(ctx, pod, obs, plan) {
		if o, err := w.observe(ctx); err == nil {
			obs = o
		}
	}
	waiting := make(map[string]podsync.Waiting, len(w.waiting)+len(plan.Waiting))
	for k, v := range w.waiting {
		waiting[k] = v
	}
	for k, v := range plan.Waiting {
		waiting[k] = v
		w.a.events.Event(record.PodRef(pod, k), corev1.EventTypeWarning, "BackOff",
			"Back-off restarting failed container "+k+" in pod "+podsync.PodDesc(pod))
	}
	st := podsync.ComputeStatus(podsync.StatusInput{Pod: pod, Observed: obs, Waiting: waiting,
		HostIP: w.a.cfg.NodeIP, Now: now})
	w.local = &st
	w.reportStatus(ctx, st)

	next = w.a.cfg.SyncPeriod
	if plan.Requeue > 0 && plan.Requeue+50*time.Millisecond < next {
		next = plan.Requeue + 50*time.Millisecond
	}
	if (st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed) && !w.torndown {
		next = 0 // release the sandbox of a pod that just finished
	}
	return next, false
}

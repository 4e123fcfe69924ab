package agent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"kedge.dev/kedge/client"
)

// runPodSource lists and watches the pods bound to this node and hands
// them to their workers. A broken watch or 410 Gone leads to a relist; an
// unreachable server to retries with back-off, while the workers keep
// running the pods they have.
func (a *Agent) runPodSource(ctx context.Context) {
	retry := time.Second
	for ctx.Err() == nil {
		rv, err := a.listPods(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.logLimited("pods-list", "listing pods failed; running the cached pods", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry):
			}
			retry = min(2*retry, 30*time.Second)
			continue
		}
		retry = time.Second
		if err := a.watchPods(ctx, rv); err != nil && ctx.Err() == nil {
			a.log.Debug("pod watch ended", "err", err)
		}
	}
}

func (a *Agent) podSelector() string { return "spec.nodeName=" + a.cfg.NodeName }

// listPods lists the node's pods, updates every worker, tells the workers
// of pods that are gone, and returns the list's resourceVersion.
func (a *Agent) listPods(ctx context.Context) (string, error) {
	var list corev1.PodList
	if err := a.api.List(ctx, client.Pods, metav1.ListOptions{FieldSelector: a.podSelector()}, &list); err != nil {
		return "", fmt.Errorf("list pods of node %s: %w", a.cfg.NodeName, err)
	}
	present := map[types.UID]bool{}
	for i := range list.Items {
		pod := &list.Items[i]
		present[pod.UID] = true
		a.podUpdate(pod, true)
	}
	known, _ := a.knownPods()
	for uid := range known {
		if !present[uid] {
			a.podGone(uid)
		}
	}
	a.mu.Lock()
	a.apiSynced = true
	a.mu.Unlock()
	return list.ResourceVersion, nil
}

// watchPods follows pod changes from rv until the watch breaks.
func (a *Agent) watchPods(ctx context.Context, rv string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := a.api.Watch(ctx, client.Pods, metav1.ListOptions{FieldSelector: a.podSelector(), ResourceVersion: rv,
		AllowWatchBookmarks: true}, func() any { return &corev1.Pod{} })
	if err != nil {
		return fmt.Errorf("watch pods: %w", err)
	}
	for ev := range ch {
		switch ev.Type {
		case watch.Added, watch.Modified:
			a.podUpdate(ev.Object.(*corev1.Pod), true)
		case watch.Deleted:
			a.podGone(ev.Object.(*corev1.Pod).UID)
		case watch.Error:
			if apierrors.IsGone(ev.Err) || apierrors.IsResourceExpired(ev.Err) {
				return fmt.Errorf("watch expired, relisting: %w", ev.Err)
			}
			return fmt.Errorf("watch error: %w", ev.Err)
		}
	}
	return nil
}

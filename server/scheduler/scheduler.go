// Package scheduler binds pods to nodes. The decision (Decide) is a pure
// function of a pod and the nodes with their pods; the loop around it reads
// that state from the API, binds through pods/<name>/binding and records
// Scheduled / FailedScheduling events, as kube-scheduler does.
package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kedge.dev/kedge/client"
	"kedge.dev/kedge/client/record"
	"kedge.dev/kedge/server/controller"
)

// Name is the schedulerName pods must carry (the API server defaults it).
const Name = "default-scheduler"

// API is what the scheduler needs from the API client.
type API interface {
	controller.Watcher
	Post(ctx context.Context, r client.Resource, name, subresource string, body, out any) error
}

// Events records events (record.Recorder).
type Events interface {
	Event(ref corev1.ObjectReference, eventType, reason, message string)
}

var _ Events = (*record.Recorder)(nil)

// Scheduler is the scheduling loop. One goroutine (Run) owns it.
type Scheduler struct {
	api    API
	events Events
	log    *slog.Logger
	// failed remembers the last failure message per pod UID so a pod that
	// cannot fit gets one event per change of reason, not one per pass.
	failed map[string]string
	resync time.Duration
}

// New builds a scheduler.
func New(api API, events Events, log *slog.Logger) *Scheduler {
	return &Scheduler{api: api, events: events, log: log.With("component", "scheduler"), failed: map[string]string{}, resync: 10 * time.Second}
}

// Run schedules until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	return controller.Loop(ctx, s.api, []client.Resource{client.Pods, client.Nodes}, s.resync, s.log, s.pass)
}

// pass schedules every pending, unbound pod once, oldest first.
func (s *Scheduler) pass(ctx context.Context) error {
	var pods corev1.PodList
	if err := s.api.List(ctx, client.Pods, metav1.ListOptions{}, &pods); err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	var pending []*corev1.Pod
	bound := map[string][]*corev1.Pod{}
	for i := range pods.Items {
		p := &pods.Items[i]
		switch {
		case p.Spec.NodeName != "":
			bound[p.Spec.NodeName] = append(bound[p.Spec.NodeName], p)
		case p.DeletionTimestamp == nil && p.Spec.SchedulerName == Name &&
			p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed:
			pending = append(pending, p)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	var nodes corev1.NodeList
	if err := s.api.List(ctx, client.Nodes, metav1.ListOptions{}, &nodes); err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	infos := make([]NodeInfo, len(nodes.Items))
	for i := range nodes.Items {
		infos[i] = NodeInfo{Node: &nodes.Items[i], Pods: bound[nodes.Items[i].Name]}
	}
	sort.Slice(pending, func(i, j int) bool {
		return pending[i].CreationTimestamp.Before(&pending[j].CreationTimestamp)
	})
	for _, p := range pending {
		d := Decide(p, infos)
		if d.Node == "" {
			if s.failed[string(p.UID)] != d.Message {
				s.failed[string(p.UID)] = d.Message
				s.events.Event(record.PodRef(p, ""), corev1.EventTypeWarning, "FailedScheduling", d.Message)
				s.log.Info("pod does not fit", "pod", p.Namespace+"/"+p.Name, "why", d.Message)
			}
			continue
		}
		if err := s.bind(ctx, p, d.Node); err != nil {
			s.log.Warn("bind failed", "pod", p.Namespace+"/"+p.Name, "node", d.Node, "err", err)
			continue
		}
		delete(s.failed, string(p.UID))
		// Later pods of this pass see the capacity this one took.
		for i := range infos {
			if infos[i].Node.Name == d.Node {
				infos[i].Pods = append(infos[i].Pods, p)
			}
		}
	}
	return nil
}

func (s *Scheduler) bind(ctx context.Context, p *corev1.Pod, node string) error {
	b := &corev1.Binding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Binding"},
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}
	err := s.api.Post(ctx, client.Pods.In(p.Namespace), p.Name, "binding", b, nil)
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // deleted or bound meanwhile: nothing to do
	}
	if err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	s.events.Event(record.PodRef(p, ""), corev1.EventTypeNormal, "Scheduled", fmt.Sprintf("Successfully assigned %s/%s to %s", p.Namespace, p.Name, node))
	return nil
}

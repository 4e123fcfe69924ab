package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kedge.dev/kedge/client"
)

// NamespaceAPI is what the namespace controller needs from the API client.
type NamespaceAPI interface {
	Watcher
	Delete(ctx context.Context, r client.Resource, name string, opts metav1.DeleteOptions) error
	Put(ctx context.Context, r client.Resource, name, subresource string, body, out any) error
}

// Namespaces finishes the deletion of Terminating namespaces, as
// kube-controller-manager's namespace controller does: it deletes every
// object in the namespace (pods gracefully, so their containers stop
// cleanly), and once none is left it removes the "kubernetes" finalizer
// through namespaces/<name>/finalize, which lets the API server drop the
// namespace.
type Namespaces struct {
	api NamespaceAPI
	// contents lists the namespaced resources to empty, in order.
	contents []client.Resource
	log      *slog.Logger
	resync   time.Duration

	// terminating holds the namespaces being deleted, from the last list
	// of namespaces: a pod event outside them costs nothing, and one inside
	// them does not list every namespace again (a site with many
	// namespaces and busy pods would pay that on every status update).
	mu          sync.Mutex
	terminating map[string]*corev1.Namespace
}

// NewNamespaces builds the controller. contents are the namespaced
// resources the API serves.
func NewNamespaces(api NamespaceAPI, contents []client.Resource, log *slog.Logger) *Namespaces {
	return &Namespaces{api: api, contents: contents, log: log.With("controller", "namespace"), resync: 5 * time.Second}
}

// Run works until ctx ends. Pods of a terminating namespace disappear one
// by one; watching them lets the namespace go as soon as the last is gone.
// Namespaces are listed at start, when one changes, and every resync; a
// change of a pod in a terminating namespace only revisits the
// terminating namespaces.
func (c *Namespaces) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	nsWake, podWake := make(chan struct{}, 1), make(chan struct{}, 1)
	wg.Add(2)
	go func() { defer wg.Done(); WatchChanges(ctx, c.api, client.Namespaces, c.log, nsWake) }()
	go func() {
		defer wg.Done()
		watchChanges(ctx, c.api, client.Pods, c.log, podWake, func(m *metav1.PartialObjectMetadata) bool {
			return c.isTerminating(m.Namespace)
		})
	}()
	tick := time.NewTicker(c.resync)
	defer tick.Stop()
	for {
		relist := false
		select {
		case <-ctx.Done():
			return nil
		case <-nsWake:
			relist = true
		case <-tick.C:
			relist = true
		case <-podWake:
		}
		if err := c.sync(ctx, relist); err != nil && ctx.Err() == nil {
			c.log.Warn("sync failed", "err", err)
		}
	}
}

func (c *Namespaces) isTerminating(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.terminating[name] != nil
}

// sync finishes every terminating namespace; relist first reads the
// namespaces again.
func (c *Namespaces) sync(ctx context.Context, relist bool) error {
	if relist {
		var list corev1.NamespaceList
		if err := c.api.List(ctx, client.Namespaces, metav1.ListOptions{}, &list); err != nil {
			return fmt.Errorf("list namespaces: %w", err)
		}
		terminating := map[string]*corev1.Namespace{}
		for i := range list.Items {
			if ns := &list.Items[i]; ns.DeletionTimestamp != nil {
				terminating[ns.Name] = ns
			}
		}
		c.mu.Lock()
		c.terminating = terminating
		c.mu.Unlock()
	}
	c.mu.Lock()
	todo := make([]*corev1.Namespace, 0, len(c.terminating))
	for _, ns := range c.terminating {
		todo = append(todo, ns)
	}
	c.mu.Unlock()
	for _, ns := range todo {
		if err := c.finish(ctx, ns); err != nil {
			c.log.Warn("cannot finish namespace deletion", "namespace", ns.Name, "err", err)
		}
	}
	return nil
}

// finish deletes what is left in ns and finalizes it when it is empty.
func (c *Namespaces) finish(ctx context.Context, ns *corev1.Namespace) error {
	remaining := 0
	for _, r := range c.contents {
		var objs metav1.PartialObjectMetadataList
		if err := c.api.List(ctx, r.In(ns.Name), metav1.ListOptions{}, &objs); err != nil {
			return fmt.Errorf("list %s: %w", r, err)
		}
		for _, o := range objs.Items {
			remaining++
			if o.DeletionTimestamp != nil {
				continue // already going; the agent finishes it
			}
			err := c.api.Delete(ctx, r.In(ns.Name), o.Name, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete %s %s/%s: %w", r, ns.Name, o.Name, err)
			}
		}
	}
	if remaining > 0 {
		return nil
	}
	var kept []corev1.FinalizerName
	for _, f := range ns.Spec.Finalizers {
		if f != corev1.FinalizerKubernetes {
			kept = append(kept, f)
		}
	}
	if len(kept) == len(ns.Spec.Finalizers) {
		return nil
	}
	fin := ns.DeepCopy()
	fin.Spec.Finalizers = kept
	if err := c.api.Put(ctx, client.Namespaces, ns.Name, "finalize", fin, nil); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("finalize namespace %s: %w", ns.Name, err)
	}
	c.mu.Lock()
	delete(c.terminating, ns.Name) // gone; the namespace's own event relists anyway
	c.mu.Unlock()
	c.log.Info("namespace emptied and finalized", "namespace", ns.Name)
	return nil
}

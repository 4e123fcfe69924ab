package controller

import (
	"context"
	"fmt"
	"log/slog"
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
}

// NewNamespaces builds the controller. contents are the namespaced
// resources the API serves.
func NewNamespaces(api NamespaceAPI, contents []client.Resource, log *slog.Logger) *Namespaces {
	return &Namespaces{api: api, contents: contents, log: log.With("controller", "namespace"), resync: 5 * time.Second}
}

// Run works until ctx ends. Pods of a terminating namespace disappear one
// by one; watching them lets the namespace go as soon as the last is gone.
func (c *Namespaces) Run(ctx context.Context) error {
	return Loop(ctx, c.api, []client.Resource{client.Namespaces, client.Pods}, c.resync, c.log, c.sync)
}

func (c *Namespaces) sync(ctx context.Context) error {
	var list corev1.NamespaceList
	if err := c.api.List(ctx, client.Namespaces, metav1.ListOptions{}, &list); err != nil {
		return fmt.Errorf("list namespaces: %w", err)
	}
	for i := range list.Items {
		ns := &list.Items[i]
		if ns.DeletionTimestamp == nil {
			continue
		}
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
	c.log.Info("namespace emptied and finalized", "namespace", ns.Name)
	return nil
}

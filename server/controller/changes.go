// Package controller holds the API server's control loops that keep stored
// objects converging on what users asked for. Each loop is level-triggered:
// a change anywhere in the resources it cares about wakes it, and it then
// reads the current state and acts on all of it, so a missed or coalesced
// event never leaves work undone. The loops run on the raft leader only.
package controller

import (
	"context"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kedge.dev/kedge/client"
)

// Watcher is the part of the API client a control loop needs to learn that
// something changed.
type Watcher interface {
	List(ctx context.Context, r client.Resource, opts metav1.ListOptions, out any) error
	Watch(ctx context.Context, r client.Resource, opts metav1.ListOptions, newObject func() any) (<-chan client.WatchEvent, error)
}

var _ Watcher = (*client.Client)(nil)

// WatchChanges sends on notify (without blocking: wake-ups coalesce) once at
// start and whenever an object of r changes, until ctx ends. A broken or
// expired watch is re-established from a fresh list after a short pause.
func WatchChanges(ctx context.Context, w Watcher, r client.Resource, log *slog.Logger, notify chan<- struct{}) {
	watchChanges(ctx, w, r, log, notify, nil)
}

// watchChanges is WatchChanges that, with a keep func, notifies only for
// the changed objects keep accepts (the first list still notifies).
func watchChanges(ctx context.Context, w Watcher, r client.Resource, log *slog.Logger, notify chan<- struct{}, keep func(*metav1.PartialObjectMetadata) bool) {
	wake := func() {
		select {
		case notify <- struct{}{}:
		default:
		}
	}
	for ctx.Err() == nil {
		var list struct {
			Metadata metav1.ListMeta `json:"metadata"`
		}
		if err := w.List(ctx, r, metav1.ListOptions{Limit: 1}, &list); err != nil {
			log.Debug("list for watch failed", "resource", r.String(), "err", err)
			sleep(ctx, time.Second)
			continue
		}
		wake()
		watchOnce(ctx, w, r, list.Metadata.ResourceVersion, log, wake, keep)
		sleep(ctx, 200*time.Millisecond)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// watchOnce follows one watch stream until it ends or fails.
func watchOnce(ctx context.Context, w Watcher, r client.Resource, rv string, log *slog.Logger, wake func(), keep func(*metav1.PartialObjectMetadata) bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // releases the client's feeding goroutine
	events, err := w.Watch(ctx, r, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}, func() any { return &metav1.PartialObjectMetadata{} })
	if err != nil {
		log.Debug("watch failed", "resource", r.String(), "err", err)
		sleep(ctx, time.Second)
		return
	}
	for ev := range events {
		if ev.Err != nil {
			log.Debug("watch ended", "resource", r.String(), "err", ev.Err)
			return
		}
		if ev.Type == "BOOKMARK" {
			continue
		}
		if m, ok := ev.Object.(*metav1.PartialObjectMetadata); keep != nil && ok && !keep(m) {
			continue
		}
		wake()
	}
}

package controller

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"kedge.dev/kedge/client"
)

// Loop calls syncFn at start, whenever an object of the watched resources
// changes, and every resync, until ctx ends. Wake-ups that arrive while a
// sync runs coalesce into one more sync. It returns once the watches it
// started have stopped, so no goroutine outlives it.
func Loop(ctx context.Context, w Watcher, watched []client.Resource, resync time.Duration, log *slog.Logger, syncFn func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wake := make(chan struct{}, 1)
	for _, r := range watched {
		wg.Add(1)
		go func() {
			defer wg.Done()
			WatchChanges(ctx, w, r, log, wake)
		}()
	}
	tick := time.NewTicker(resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-tick.C:
		}
		if err := syncFn(ctx); err != nil && ctx.Err() == nil {
			log.Warn("sync failed", "err", err)
		}
	}
}

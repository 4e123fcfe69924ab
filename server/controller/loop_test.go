package controller

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kedge.dev/kedge/client"
)

// fakeWatcher lists nothing and hands out watch channels the test feeds.
type fakeWatcher struct {
	events chan client.WatchEvent
}

func (f *fakeWatcher) List(ctx context.Context, r client.Resource, opts metav1.ListOptions, out any) error {
	return nil
}

func (f *fakeWatcher) Watch(ctx context.Context, r client.Resource, opts metav1.ListOptions, newObject func() any) (<-chan client.WatchEvent, error) {
	ch := make(chan client.WatchEvent)
	go func() {
		defer close(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-f.events:
				select {
				case ch <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return ch, nil
}

func TestLoopSyncsOnChangeAndStopsCleanly(t *testing.T) {
	before := runtime.NumGoroutine()
	w := &fakeWatcher{events: make(chan client.WatchEvent)}
	var syncs atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- Loop(ctx, w, []client.Resource{client.Pods}, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)), func(context.Context) error {
			syncs.Add(1)
			return nil
		})
	}()
	waitFor := func(n int32) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for syncs.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d syncs, want %d", syncs.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(1) // the first list wakes the loop
	w.events <- client.WatchEvent{Type: "MODIFIED"}
	waitFor(2)
	w.events <- client.WatchEvent{Type: "BOOKMARK"}
	time.Sleep(50 * time.Millisecond)
	if n := syncs.Load(); n != 2 {
		t.Fatalf("a bookmark caused a sync: %d syncs", n)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Loop did not return after cancel")
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("goroutines: %d before, %d after", before, n)
	}
}

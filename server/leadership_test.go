package server

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// fakeLeadership is a Leadership the test flips.
type fakeLeadership struct {
	mu      sync.Mutex
	leader  bool
	changed chan struct{}
}

func newFakeLeadership() *fakeLeadership { return &fakeLeadership{changed: make(chan struct{})} }

func (f *fakeLeadership) Leadership() (bool, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader, f.changed
}

func (f *fakeLeadership) set(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leader = v
	close(f.changed)
	f.changed = make(chan struct{})
}

func TestRunWhileLeading(t *testing.T) {
	l := newFakeLeadership()
	running := make(chan bool, 10)
	work := func(ctx context.Context) error {
		running <- true
		<-ctx.Done()
		running <- false
		return ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runWhileLeading(ctx, l, work, slog.New(slog.DiscardHandler)) }()
	expect := func(want bool, what string) {
		t.Helper()
		select {
		case got := <-running:
			if got != want {
				t.Fatalf("%s: work running=%v, want %v", what, got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: nothing happened", what)
		}
	}
	select {
	case <-running:
		t.Fatal("work started without leadership")
	case <-time.After(50 * time.Millisecond):
	}
	l.set(true)
	expect(true, "gained leadership")
	l.set(false)
	expect(false, "lost leadership")
	select {
	case <-running:
		t.Fatal("work restarted while not leading")
	case <-time.After(50 * time.Millisecond):
	}
	l.set(true)
	expect(true, "leading again")
	cancel()
	expect(false, "server stopping")
	if err := <-done; err != nil {
		t.Fatalf("runWhileLeading = %v", err)
	}
}

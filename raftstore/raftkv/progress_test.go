package raftkv

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// Waiters see every advance: a waiter that checks its condition after
// taking the channel cannot miss an advance that happens in between.
func TestProgressWakesWaiters(t *testing.T) {
	s := &Store{fsm: &fsm{progress: newProgress()}, closing: make(chan struct{})}
	var applied atomic.Int64
	const target = 2000
	done := make(chan error, 4)
	for w := 0; w < 4; w++ {
		go func() {
			done <- s.waitFor(context.Background(), func() bool { return applied.Load() >= target }, func() string { return "" })
		}()
	}
	for i := 0; i < target; i++ {
		applied.Add(1)
		s.fsm.progress.advance()
	}
	for w := 0; w < 4; w++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a waiter missed the last advance")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.waitFor(ctx, func() bool { return false }, func() string { return "never" }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waitFor past its deadline: %v", err)
	}
}

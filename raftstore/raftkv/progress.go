package raftkv

import "sync"

// progress wakes the goroutines waiting for the local state to reach an
// applied index or a revision (waitFor) as soon as the FSM applied a batch
// or restored a snapshot: the only two places where state.db changes.
// Safe for concurrent use.
type progress struct {
	mu sync.Mutex
	ch chan struct{} // closed at the next advance
}

func newProgress() *progress { return &progress{ch: make(chan struct{})} }

// changed returns a channel closed at the next advance. Take it before
// checking the state, so an advance right after the check is not missed.
func (p *progress) changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ch
}

// advance wakes every waiter.
func (p *progress) advance() {
	p.mu.Lock()
	close(p.ch)
	p.ch = make(chan struct{})
	p.mu.Unlock()
}

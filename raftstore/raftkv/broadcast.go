package raftkv

import (
	"strings"
	"sync"

	"kedge.dev/kedge/raftstore"
)

// broadcaster fans committed events out to live watchers. publish is called
// by the FSM goroutine only, after the events are committed to state.db, and
// never blocks: a subscriber whose buffer is full is dropped (its channel
// closed), so a slow watcher cannot stall writes.
type broadcaster struct {
	mu     sync.Mutex
	subs   map[*subscription]struct{}
	closed bool
}

// subscription is one watcher's live feed. ch is closed when the
// subscriber lagged, was cancelled, or the broadcaster closed.
type subscription struct {
	prefix string
	ch     chan raftstore.Event
}

func newBroadcaster() *broadcaster {
	return &broadcaster{subs: make(map[*subscription]struct{})}
}

// subscribe registers a feed of events under prefix with room for size
// events. It returns nil when the broadcaster is closed.
func (b *broadcaster) subscribe(prefix string, size int) *subscription {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	s := &subscription{prefix: prefix, ch: make(chan raftstore.Event, size)}
	b.subs[s] = struct{}{}
	return s
}

// unsubscribe removes s and closes its channel if still open.
func (b *broadcaster) unsubscribe(s *subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.ch)
	}
}

// publish delivers events, in order, to every matching subscriber.
func (b *broadcaster) publish(events []raftstore.Event) {
	if len(events) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		for _, ev := range events {
			if !strings.HasPrefix(ev.KV.Key, s.prefix) {
				continue
			}
			select {
			case s.ch <- ev:
			default:
				// Lagging: drop it. The watcher drains what is buffered,
				// then sees the close and ends its channel.
				delete(b.subs, s)
				close(s.ch)
			}
			if _, ok := b.subs[s]; !ok {
				break
			}
		}
	}
}

// reset drops every subscriber (after the state was replaced by a snapshot,
// when live feeds no longer continue what watchers replayed). New
// subscriptions are still accepted.
func (b *broadcaster) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dropAllLocked()
}

// close drops every subscriber and refuses new ones.
func (b *broadcaster) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.dropAllLocked()
}

func (b *broadcaster) dropAllLocked() {
	for s := range b.subs {
		delete(b.subs, s)
		close(s.ch)
	}
}

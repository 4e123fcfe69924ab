package raftkv

import (
	"strings"
	"sync"

	"kedge.dev/kedge/raftstore"
)

// broadcaster fans committed events out to live watchers. publish is called
// by the FSM goroutine only, after the events are committed to state.db, and
// never blocks: a subscriber that lags by its limit of events is dropped
// (its feed ends), so a slow watcher cannot stall writes.
type broadcaster struct {
	mu     sync.Mutex
	subs   map[*subscription]struct{}
	closed bool
}

// subscription is one watcher's live feed: a queue that grows with what the
// watcher has yet to take, up to limit events. (A channel of that capacity
// would hold limit events' worth of memory for every watch, most of which
// lag by none: every kubectl watch and informer of every node.) The feed
// ends when the subscriber lagged, was cancelled, or the broadcaster closed.
type subscription struct {
	prefix string
	limit  int
	// ready is poked (without blocking) when events were queued or the
	// feed ended.
	ready chan struct{}

	mu    sync.Mutex
	queue []raftstore.Event
	head  int  // queue[head:] are waiting
	ended bool // nothing is queued after what waits
}

// push queues ev; it reports false, and ends the feed, when the subscriber
// already lags by its limit.
func (s *subscription) push(ev raftstore.Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	if len(s.queue)-s.head >= s.limit {
		s.ended = true
	} else {
		s.queue = append(s.queue, ev)
	}
	s.poke()
	return !s.ended
}

// end ends the feed after what is queued.
func (s *subscription) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	s.poke()
}

func (s *subscription) poke() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// next returns the oldest queued event; ok is false when none waits, and
// ended then says whether the feed is over.
func (s *subscription) next() (ev raftstore.Event, ok, ended bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head == len(s.queue) {
		// Drained: let the memory go rather than keep the high-water mark.
		s.queue, s.head = nil, 0
		return raftstore.Event{}, false, s.ended
	}
	ev = s.queue[s.head]
	s.queue[s.head] = raftstore.Event{}
	s.head++
	return ev, true, false
}

func newBroadcaster() *broadcaster {
	return &broadcaster{subs: make(map[*subscription]struct{})}
}

// subscribe registers a feed of events under prefix that may lag by up to
// limit events. It returns nil when the broadcaster is closed.
func (b *broadcaster) subscribe(prefix string, limit int) *subscription {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	s := &subscription{prefix: prefix, limit: limit, ready: make(chan struct{}, 1)}
	b.subs[s] = struct{}{}
	return s
}

// unsubscribe removes s and ends its feed.
func (b *broadcaster) unsubscribe(s *subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		s.end()
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
			if !s.push(ev) {
				// Lagging: drop it. The watcher drains what is queued,
				// then sees the end and ends its channel.
				delete(b.subs, s)
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
		s.end()
	}
}

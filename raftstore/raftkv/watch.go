package raftkv

import (
	"context"
	"fmt"

	"kedge.dev/kedge/raftstore"
)

// Watch delivers every change under prefix after afterRev. It subscribes to
// live events first and then replays history from state.db, so nothing
// committed in between is missed; events already sent by the replay are
// skipped on the live feed by revision, so nothing is sent twice.
func (s *Store) Watch(ctx context.Context, prefix string, afterRev int64) (<-chan raftstore.Event, error) {
	if err := s.gate.enter(); err != nil {
		return nil, fmt.Errorf("watch %q: %w", prefix, err)
	}
	sub := s.bc.subscribe(prefix, s.cfg.WatchBufferSize)
	if sub == nil {
		s.gate.exit()
		return nil, fmt.Errorf("watch %q: %w", prefix, raftstore.ErrClosed)
	}
	if afterRev == 0 {
		// "From now": anything published after subscribe with a newer
		// revision is new; older ones were committed before this call.
		afterRev = s.db.Revision()
	}
	// The first page is read here so ErrCompacted reaches the caller.
	first, err := s.db.Events(ctx, prefix, afterRev, s.cfg.WatchReplayBatch)
	if err != nil {
		s.bc.unsubscribe(sub)
		s.gate.exit()
		return nil, fmt.Errorf("watch %q: %w", prefix, err)
	}
	out := make(chan raftstore.Event, 64)
	go func() {
		defer s.gate.exit()
		defer close(out)
		defer s.bc.unsubscribe(sub)
		w := watcher{s: s, ctx: ctx, prefix: prefix, last: afterRev, out: out}
		if !w.replay(first) {
			return
		}
		w.live(sub)
	}()
	return out, nil
}

type watcher struct {
	s      *Store
	ctx    context.Context
	prefix string
	last   int64
	out    chan<- raftstore.Event
}

func (w *watcher) send(ev raftstore.Event) bool {
	if ev.KV.ModRevision <= w.last {
		return true
	}
	select {
	case w.out <- ev:
		w.last = ev.KV.ModRevision
		return true
	case <-w.ctx.Done():
		return false
	case <-w.s.closing:
		return false
	}
}

// replay sends history page by page until a page comes back short.
func (w *watcher) replay(page []raftstore.Event) bool {
	batch := w.s.cfg.WatchReplayBatch
	for {
		for _, ev := range page {
			if !w.send(ev) {
				return false
			}
		}
		if len(page) < batch {
			return true
		}
		var err error
		page, err = w.s.db.Events(w.ctx, w.prefix, w.last, batch)
		if err != nil {
			// Compacted under us or closing: end the channel; the caller
			// watches again and learns which.
			w.s.log.Debug("watch replay ended", "prefix", w.prefix, "after", w.last, "err", err)
			return false
		}
	}
}

// live forwards the subscription until it ends (lag, reset, close) or ctx
// ends.
func (w *watcher) live(sub *subscription) {
	for {
		ev, ok, ended := sub.next()
		switch {
		case ok:
			if !w.send(ev) {
				return
			}
			continue
		case ended:
			return
		}
		select {
		case <-sub.ready:
		case <-w.ctx.Done():
			return
		}
	}
}

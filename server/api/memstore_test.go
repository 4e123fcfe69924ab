package api

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"kedge.dev/kedge/raftstore"
)

// memStore is an in-memory raftstore.Store for tests: every version of
// every key is kept (until Compact) so lists at old revisions and watches
// from old revisions behave as the contract says.
type memStore struct {
	mu        sync.Mutex
	rev       int64
	compacted int64
	log       []raftstore.Event // every event, in revision order
	cur       map[string]raftstore.KeyValue
	changed   chan struct{} // closed and replaced on every write
	// failUpdates makes the next n Update calls fail with ErrConflict after
	// a concurrent-looking write, to exercise retry loops.
	failUpdates int
}

var _ raftstore.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{cur: map[string]raftstore.KeyValue{}, changed: make(chan struct{})}
}

func (m *memStore) commit(ev raftstore.Event) {
	m.log = append(m.log, ev)
	if ev.Type == raftstore.EventDelete {
		delete(m.cur, ev.KV.Key)
	} else {
		m.cur[ev.KV.Key] = ev.KV
	}
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *memStore) Get(_ context.Context, key string) (raftstore.KeyValue, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	kv, ok := m.cur[key]
	if !ok {
		return kv, fmt.Errorf("get %s: %w", key, raftstore.ErrNotFound)
	}
	return kv, nil
}

func (m *memStore) List(_ context.Context, prefix string, opts raftstore.ListOptions) (raftstore.ListResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rev := opts.Revision
	if rev == 0 {
		rev = m.rev
	}
	if rev > m.rev {
		return raftstore.ListResult{}, fmt.Errorf("list at %d: %w", rev, raftstore.ErrFutureRevision)
	}
	if rev < m.compacted {
		return raftstore.ListResult{}, fmt.Errorf("list at %d (compacted %d): %w", rev, m.compacted, raftstore.ErrCompacted)
	}
	state := map[string]raftstore.KeyValue{}
	for _, ev := range m.log {
		if ev.KV.ModRevision > rev {
			break
		}
		if !strings.HasPrefix(ev.KV.Key, prefix) {
			continue
		}
		if ev.Type == raftstore.EventDelete {
			delete(state, ev.KV.Key)
		} else {
			state[ev.KV.Key] = ev.KV
		}
	}
	var keys []string
	for k := range state {
		if opts.StartAfter == "" || k > opts.StartAfter {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	res := raftstore.ListResult{Revision: rev}
	for i, k := range keys {
		if opts.Limit > 0 && int64(i) == opts.Limit {
			res.More = true
			res.Remaining = int64(len(keys) - i)
			break
		}
		res.KVs = append(res.KVs, state[k])
	}
	return res, nil
}

func (m *memStore) Create(_ context.Context, key string, value []byte) (raftstore.KeyValue, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.cur[key]; ok {
		return raftstore.KeyValue{}, fmt.Errorf("create %s: %w", key, raftstore.ErrKeyExists)
	}
	m.rev++
	kv := raftstore.KeyValue{Key: key, Value: append([]byte(nil), value...), CreateRevision: m.rev, ModRevision: m.rev}
	m.commit(raftstore.Event{Type: raftstore.EventPut, KV: kv})
	return kv, nil
}

func (m *memStore) Update(_ context.Context, key string, value []byte, expect int64) (raftstore.KeyValue, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.cur[key]
	if !ok {
		return raftstore.KeyValue{}, fmt.Errorf("update %s: %w", key, raftstore.ErrNotFound)
	}
	if m.failUpdates > 0 {
		m.failUpdates--
		return raftstore.KeyValue{}, fmt.Errorf("update %s (injected): %w", key, raftstore.ErrConflict)
	}
	if expect != 0 && expect != old.ModRevision {
		return raftstore.KeyValue{}, fmt.Errorf("update %s: %w", key, raftstore.ErrConflict)
	}
	m.rev++
	kv := raftstore.KeyValue{Key: key, Value: append([]byte(nil), value...), CreateRevision: old.CreateRevision, ModRevision: m.rev}
	prev := old
	m.commit(raftstore.Event{Type: raftstore.EventPut, KV: kv, PrevKV: &prev})
	return kv, nil
}

func (m *memStore) Delete(_ context.Context, key string, expect int64) (raftstore.KeyValue, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.cur[key]
	if !ok {
		return raftstore.KeyValue{}, fmt.Errorf("delete %s: %w", key, raftstore.ErrNotFound)
	}
	if expect != 0 && expect != old.ModRevision {
		return raftstore.KeyValue{}, fmt.Errorf("delete %s: %w", key, raftstore.ErrConflict)
	}
	m.rev++
	kv := old
	kv.ModRevision = m.rev
	prev := old
	m.commit(raftstore.Event{Type: raftstore.EventDelete, KV: kv, PrevKV: &prev})
	return kv, nil
}

func (m *memStore) Watch(ctx context.Context, prefix string, afterRev int64) (<-chan raftstore.Event, error) {
	m.mu.Lock()
	if afterRev == 0 {
		afterRev = m.rev
	}
	if afterRev < m.compacted {
		m.mu.Unlock()
		return nil, fmt.Errorf("watch after %d (compacted %d): %w", afterRev, m.compacted, raftstore.ErrCompacted)
	}
	m.mu.Unlock()
	ch := make(chan raftstore.Event, 64)
	go func() {
		defer close(ch)
		next := afterRev
		for {
			m.mu.Lock()
			var batch []raftstore.Event
			for _, ev := range m.log {
				if ev.KV.ModRevision > next && strings.HasPrefix(ev.KV.Key, prefix) {
					batch = append(batch, ev)
				}
			}
			if len(m.log) > 0 {
				next = max(next, m.log[len(m.log)-1].KV.ModRevision)
			}
			wait := m.changed
			m.mu.Unlock()
			for _, ev := range batch {
				select {
				case ch <- ev:
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-wait:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

func (m *memStore) Revision(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rev, nil
}

func (m *memStore) Compact(_ context.Context, rev int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rev <= m.compacted {
		return nil
	}
	m.compacted = rev
	return nil
}

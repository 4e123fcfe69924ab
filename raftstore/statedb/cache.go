package statedb

import (
	"container/list"
	"sync"
)

// valueCache holds the live row (value, mod and create revision) of keys
// written or read recently, so Get and the apply path's lookup of a key's
// current row skip SQLite: with writes going on, a reader connection starts
// every transaction with an empty page cache and reads each B-tree page
// again, which made a Get cost as much as decoding the object.
//
// Consistency with reads that go to SQLite (List, Events, a Get that
// misses): the cache only ever holds committed rows, and while the apply
// path commits a batch, the keys of that batch are "in flight": Get sends
// them to SQLite. The apply path updates their rows and clears the set in
// one critical section after the commit. So a Get that starts after a
// commit finished (as seen by any reader) returns that commit's row or a
// newer one, and a row a Get returns is committed.
//
// A Get that missed may add what it read unless a commit finished or
// started for that key meanwhile (epoch and inflight tell).
//
// Only live rows are kept: a deleted key is dropped, so what the apply path
// decides about tombstones (and compaction removes) is always read from
// SQLite. Values are shared with callers of Apply and must not be modified;
// Get returns copies.
//
// Safe for concurrent use; mu is never held during I/O.
type valueCache struct {
	mu       sync.Mutex
	maxBytes int64 // <= 0: disabled
	bytes    int64
	entries  map[string]*list.Element // of *cacheEntry
	lru      list.List                // front: most recently used
	inflight map[string]bool          // keys of the batch being committed
	epoch    uint64                   // commits finished
}

type cacheEntry struct {
	key string
	row row
}

// entryOverhead approximates the bytes of bookkeeping per entry (map slot,
// list element, entry), so many small values still respect the bound.
const entryOverhead = 160

func newValueCache(maxBytes int64) *valueCache {
	return &valueCache{maxBytes: maxBytes, entries: map[string]*list.Element{}}
}

func (c *valueCache) enabled() bool { return c.maxBytes > 0 }

// lookup returns the cached live row of key. pending is true when key is in
// a commit in progress (the caller must read SQLite and not fill); epoch is
// what fill needs.
func (c *valueCache) lookup(key string) (r row, ok, pending bool, epoch uint64) {
	if !c.enabled() {
		return row{}, false, true, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight[key] {
		return row{}, false, true, c.epoch
	}
	if el, found := c.entries[key]; found {
		c.lru.MoveToFront(el)
		return el.Value.(*cacheEntry).row, true, false, c.epoch
	}
	return row{}, false, false, c.epoch
}

// committed returns the cached row of key for the apply path, which is the
// only writer: no commit can be in progress while it asks.
func (c *valueCache) committed(key string) (row, bool) {
	if !c.enabled() {
		return row{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, found := c.entries[key]; found {
		c.lru.MoveToFront(el)
		return el.Value.(*cacheEntry).row, true
	}
	return row{}, false
}

// fill adds a live row a Get read from SQLite, unless a commit finished
// since epoch or one touching key is in progress (the row may be stale).
func (c *valueCache) fill(key string, r row, epoch uint64) {
	if !c.enabled() || r.deleted {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch || c.inflight[key] {
		return
	}
	if _, found := c.entries[key]; found {
		return
	}
	c.put(key, r)
}

// beginCommit marks the keys of a batch about to commit.
func (c *valueCache) beginCommit(keys map[string]bool) {
	if !c.enabled() {
		return
	}
	c.mu.Lock()
	c.inflight = keys
	c.mu.Unlock()
}

// endCommit records a batch's outcome: rows[key] is the key's live row after
// the batch, or a deleted row. committed false (the commit failed) only
// drops the keys, whatever SQLite holds now.
func (c *valueCache) endCommit(rows map[string]row, committed bool) {
	if !c.enabled() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, r := range rows {
		if committed && !r.deleted {
			c.put(key, r)
		} else {
			c.remove(key)
		}
	}
	c.inflight = nil
	c.epoch++
}

// reset empties the cache (the file was replaced).
func (c *valueCache) reset() {
	if !c.enabled() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = map[string]*list.Element{}
	c.lru.Init()
	c.bytes = 0
	c.inflight = nil
	c.epoch++
}

// put inserts or replaces key's row and evicts the least recently used
// entries beyond the bound; a row larger than the whole bound is not kept.
// Callers hold mu.
func (c *valueCache) put(key string, r row) {
	c.remove(key)
	size := int64(len(key)+len(r.value)) + entryOverhead
	if size > c.maxBytes {
		return
	}
	c.entries[key] = c.lru.PushFront(&cacheEntry{key: key, row: r})
	c.bytes += size
	for c.bytes > c.maxBytes {
		c.remove(c.lru.Back().Value.(*cacheEntry).key)
	}
}

// remove drops key. Callers hold mu.
func (c *valueCache) remove(key string) {
	el, found := c.entries[key]
	if !found {
		return
	}
	e := el.Value.(*cacheEntry)
	c.lru.Remove(el)
	delete(c.entries, key)
	c.bytes -= int64(len(e.key)+len(e.row.value)) + entryOverhead
}

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
// The cache holds applied rows: Apply puts the rows of a batch here as soon
// as it has written them into its transaction, which may commit later
// (Config.CommitInterval). That is what a read of the latest state must
// see: raft has committed those entries, and their results have been
// returned. Reads that go to SQLite (List, Events, a Get that misses) first
// commit whatever is applied (DB.commitForRead), so they see it too.
//
// A Get that missed may add what it read unless an apply changed the cache
// meanwhile (epoch tells): its row may be older than what was applied since.
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
	epoch    uint64                   // batches applied, resets
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

// lookup returns the cached live row of key and the epoch fill needs.
func (c *valueCache) lookup(key string) (r row, ok bool, epoch uint64) {
	if !c.enabled() {
		return row{}, false, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, found := c.entries[key]; found {
		c.lru.MoveToFront(el)
		return el.Value.(*cacheEntry).row, true, c.epoch
	}
	return row{}, false, c.epoch
}

// current returns the cached row of key for the apply path, which is the
// only writer, so the row is the key's newest.
func (c *valueCache) current(key string) (row, bool) {
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

// fill adds a live row a Get read from SQLite, unless a batch was applied
// since epoch (the row may be stale).
func (c *valueCache) fill(key string, r row, epoch uint64) {
	if !c.enabled() || r.deleted {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	if _, found := c.entries[key]; found {
		return
	}
	c.put(key, r)
}

// applied records a batch: rows[key] is the key's live row after the
// batch, or a deleted row.
func (c *valueCache) applied(rows map[string]row) {
	if !c.enabled() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, r := range rows {
		if r.deleted {
			c.remove(key)
		} else {
			c.put(key, r)
		}
	}
	c.epoch++
}

// reset empties the cache (the file was replaced, or a storage failure
// discarded applied rows).
func (c *valueCache) reset() {
	if !c.enabled() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = map[string]*list.Element{}
	c.lru.Init()
	c.bytes = 0
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

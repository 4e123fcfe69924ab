// Copyright IBM Corp. 2013, 2025
// SPDX-License-Identifier: MPL-2.0

package raft

import (
	"fmt"
	"sync"
)

// LogCache wraps any LogStore implementation to provide an
// in-memory ring buffer. This is used to cache access to
// the recently written entries. For implementations that do not
// cache themselves, this can provide a substantial boost by
// avoiding disk I/O on recent entries.
type LogCache struct {
	store LogStore

	cache []*Log
	l     sync.RWMutex
}

// NewLogCache is used to create a new LogCache with the
// given capacity and backend store.
func NewLogCache(capacity int, store LogStore) (*LogCache, error) {
	if capacity <= 0 {
		return nil, fmt.Errorf("capacity must be positive")
	}
	c := &LogCache{
		store: store,
		cache: make([]*Log, capacity),
	}
	return c, nil
}

// IsMonotonic implements the MonotonicLogStore interface. This is a shim to
// expose the underlying store as monotonically indexed or not.
func (c *LogCache) IsMonotonic() bool {
	if store, ok := c.store.(MonotonicLogStore); ok {
		return store.IsMonotonic()
	}

	return false
}

func (c *LogCache) GetLog(idx uint64, log *Log) error {
	// Check the buffer for an entry
	c.l.RLock()
	cached := c.cache[idx%uint64(len(c.cache))]
	c.l.RUnlock()

	// Check if entry is valid
	if cached != nil && cached.Index == idx {
		*log = *cached
		return nil
	}

	// Forward request on cache miss
	return c.store.GetLog(idx, log)
}

func (c *LogCache) StoreLog(log *Log) error {
	return c.StoreLogs([]*Log{log})
}

func (c *LogCache) StoreLogs(logs []*Log) error {
	// kedge: the entries are in the ring buffer while they are written, so
	// a leader can replicate them meanwhile (see stage); a failed write
	// takes them out again.
	staged := c.stage(logs)
	if err := c.store.StoreLogs(logs); err != nil {
		c.unstage(logs)
		return fmt.Errorf("unable to store logs within log store, err: %q", err)
	}
	if !staged {
		// Too many to stage; stored now, the newest are cached as
		// upstream caches every batch.
		c.put(logs)
	}
	return nil
}

// stage makes logs readable through GetLog before they are stored. It
// reports false, staging nothing, when they would not all fit in the ring
// buffer at once.
//
// kedge: part of the leader's parallel append (dispatchLogs).
func (c *LogCache) stage(logs []*Log) bool {
	if 2*len(logs) > len(c.cache) {
		return false
	}
	c.put(logs)
	return true
}

// put caches copies of the newest of logs that the ring buffer holds.
//
// kedge: the buffer keeps copies. A leader's entries are fields of its
// apply futures, so keeping the caller's pointers kept every future (with
// the state machine's response to it) alive until its slot was reused: on
// a kedge leader ~1.4 MB of responses live for 1024 slots.
func (c *LogCache) put(logs []*Log) {
	if len(logs) > len(c.cache) {
		logs = logs[len(logs)-len(c.cache):]
	}
	copies := make([]Log, len(logs))
	c.l.Lock()
	for i, l := range logs {
		copies[i] = *l
		c.cache[l.Index%uint64(len(c.cache))] = &copies[i]
	}
	c.l.Unlock()
}

// unstage removes staged logs that were not stored.
func (c *LogCache) unstage(logs []*Log) {
	c.l.Lock()
	for _, l := range logs {
		if slot := l.Index % uint64(len(c.cache)); c.cache[slot] != nil && c.cache[slot].Index == l.Index && c.cache[slot].Term == l.Term {
			c.cache[slot] = nil
		}
	}
	c.l.Unlock()
}

func (c *LogCache) FirstIndex() (uint64, error) {
	return c.store.FirstIndex()
}

func (c *LogCache) LastIndex() (uint64, error) {
	return c.store.LastIndex()
}

func (c *LogCache) DeleteRange(min, max uint64) error {
	// Invalidate the deleted entries. kedge: only those, as the cache
	// may hold staged entries not yet in the store (see stage).
	c.l.Lock()
	for i, l := range c.cache {
		if l != nil && l.Index >= min && l.Index <= max {
			c.cache[i] = nil
		}
	}
	c.l.Unlock()

	return c.store.DeleteRange(min, max)
}

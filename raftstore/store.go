// Package raftstore is kedge's replacement for etcd: a revisioned key-value
// store replicated with hashicorp/raft, with the raft log and the state kept
// in SQLite.
//
// The model is etcd's: one global revision counter that every successful
// write bumps by one; every key carries the revision that created it and the
// revision that last modified it; a write can be made conditional on the
// key's mod revision (Kubernetes' optimistic concurrency); lists can be served
// at an older revision still in history; watches start at any revision still
// in history and deliver every later change exactly once, in revision order.
// History older than the compacted revision is gone: asking for it returns
// ErrCompacted, which the API server turns into 410 Gone ("Expired").
//
// As in etcd, an empty store is at revision 1 and the first write gets
// revision 2, so 0 never names a real revision and is free to mean "now"
// (Watch) or "current" (ListOptions.Revision).
//
// This root package holds the contract (Store and its types); the
// implementation lives in sub-packages and never the other way round:
// raftstore/raftkv is the raft-replicated implementation and
// raftstore/storetest the conformance suite every implementation passes.
package raftstore

import (
	"context"
	"errors"
)

// Errors returned by every Store implementation. They are checked with
// errors.Is; implementations wrap them with what was being done.
var (
	// ErrNotFound: the key does not exist at the revision asked for.
	ErrNotFound = errors.New("key not found")
	// ErrKeyExists: Create found the key already present.
	ErrKeyExists = errors.New("key already exists")
	// ErrConflict: the key's mod revision was not the one the caller expected.
	ErrConflict = errors.New("revision conflict")
	// ErrCompacted: the revision asked for is older than the compacted revision.
	ErrCompacted = errors.New("revision has been compacted")
	// ErrFutureRevision: the revision asked for is newer than the store's revision.
	ErrFutureRevision = errors.New("revision is in the future")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
)

// KeyValue is one key at one revision.
type KeyValue struct {
	Key   string
	Value []byte
	// CreateRevision is the revision of the write that created the key
	// (a key deleted and created again gets a new one).
	CreateRevision int64
	// ModRevision is the revision of the last write to the key; for a
	// delete event it is the revision of the delete.
	ModRevision int64
}

// EventType says what happened to a key.
type EventType int

const (
	// EventPut is a create or an update (Create is the case PrevKV == nil).
	EventPut EventType = iota + 1
	// EventDelete removed the key; KV.Value holds the value it had.
	EventDelete
)

// Event is one change seen by a watcher.
type Event struct {
	Type EventType
	// KV is the key after the change; for EventDelete, KV.Value is the last
	// value the key had and KV.ModRevision the revision of the delete.
	KV KeyValue
	// PrevKV is the key before the change, nil for a create.
	PrevKV *KeyValue
}

// ListOptions narrows a List.
type ListOptions struct {
	// Revision to read at; 0 means the current revision.
	Revision int64
	// Limit is the most keys to return; 0 means all.
	Limit int64
	// StartAfter skips keys up to and including this key (for continue tokens).
	StartAfter string
}

// ListResult is one page of a List.
type ListResult struct {
	KVs []KeyValue
	// Revision the list was served at: pass it back in ListOptions.Revision
	// to read the next page consistently.
	Revision int64
	// More is true when keys beyond the page exist at Revision.
	More bool
	// Remaining counts keys after this page (for Kubernetes' remainingItemCount).
	Remaining int64
}

// Store is the contract the API server relies on.
//
// All methods are safe for concurrent use. Every method that waits takes a
// context and returns ctx.Err() (wrapped) when it is cancelled. A successful
// write has been committed by a quorum and applied locally before it returns,
// so a read on the same node that follows it sees it.
type Store interface {
	// Get returns the current value of key, or ErrNotFound.
	Get(ctx context.Context, key string) (KeyValue, error)
	// List returns the keys that start with prefix, in key order.
	List(ctx context.Context, prefix string, opts ListOptions) (ListResult, error)
	// Create stores a new key; ErrKeyExists if it is present.
	Create(ctx context.Context, key string, value []byte) (KeyValue, error)
	// Update replaces the value of an existing key. When expectModRev is not
	// 0 it must equal the key's current mod revision, else ErrConflict.
	// ErrNotFound if the key does not exist.
	Update(ctx context.Context, key string, value []byte, expectModRev int64) (KeyValue, error)
	// Delete removes key and returns its last value with ModRevision set to
	// the delete's revision. expectModRev as for Update.
	Delete(ctx context.Context, key string, expectModRev int64) (KeyValue, error)
	// Watch delivers every change to keys under prefix with a revision
	// greater than afterRev, in revision order, without gaps or duplicates.
	// afterRev 0 means "from now". ErrCompacted if afterRev is older than
	// the compacted revision. The channel is closed when ctx ends, when the
	// store closes, or when the watcher falls too far behind; the caller then
	// watches again from the last revision it saw.
	Watch(ctx context.Context, prefix string, afterRev int64) (<-chan Event, error)
	// Revision returns the current revision.
	Revision(ctx context.Context) (int64, error)
	// Compact discards history older than rev; later reads and watches
	// below rev return ErrCompacted.
	Compact(ctx context.Context, rev int64) error
}

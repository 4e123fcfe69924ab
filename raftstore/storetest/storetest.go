// Package storetest is the conformance suite for raftstore.Store: every
// clause of the contract in package raftstore is a named subtest, so each
// implementation (and a reference system) can be run against the same
// expectations and every semantic gap shows up as a failing name.
//
// An implementation's test calls Run with a constructor that returns a
// fresh, empty, ready store and registers its cleanup with t.Cleanup.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"kedge.dev/kedge/raftstore"
)

// NewStore returns a fresh, empty store and closes it in t.Cleanup.
type NewStore func(t *testing.T) raftstore.Store

// eventTimeout bounds how long a subtest waits for one watch event.
const eventTimeout = 10 * time.Second

// Run runs the whole suite.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(*testing.T, raftstore.Store)
	}{
		{"EmptyStoreRevision", testEmptyStoreRevision},
		{"CreateGet", testCreateGet},
		{"CreateExisting", testCreateExisting},
		{"GetMissing", testGetMissing},
		{"Update", testUpdate},
		{"UpdateMissing", testUpdateMissing},
		{"UpdateConflict", testUpdateConflict},
		{"Delete", testDelete},
		{"DeleteMissing", testDeleteMissing},
		{"DeleteConflict", testDeleteConflict},
		{"RecreateAfterDelete", testRecreateAfterDelete},
		{"RevisionBumpsByOne", testRevisionBumpsByOne},
		{"EmptyValue", testEmptyValue},
		{"ListPrefix", testListPrefix},
		{"ListAtRevision", testListAtRevision},
		{"ListFutureRevision", testListFutureRevision},
		{"ListPagination", testListPagination},
		{"ListPaginationAtRevision", testListPaginationAtRevision},
		{"WatchFromNow", testWatchFromNow},
		{"WatchFromRevision", testWatchFromRevision},
		{"WatchPrefix", testWatchPrefix},
		{"WatchDeleteAndPrevKV", testWatchDeleteAndPrevKV},
		{"WatchCancel", testWatchCancel},
		{"WatchHandOverUnderLoad", testWatchHandOver},
		{"Compact", testCompact},
		{"CompactFuture", testCompactFuture},
		{"ConcurrentCreatesDistinctRevisions", testConcurrentCreates},
		{"ConcurrentConditionalUpdates", testConcurrentConditionalUpdates},
		{"CancelledContext", testCancelledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			tc.fn(t, s)
		})
	}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustCreate(t *testing.T, s raftstore.Store, key, val string) raftstore.KeyValue {
	t.Helper()
	kv, err := s.Create(ctxT(t), key, []byte(val))
	if err != nil {
		t.Fatalf("Create(%q): %v", key, err)
	}
	return kv
}

func mustUpdate(t *testing.T, s raftstore.Store, key, val string, expect int64) raftstore.KeyValue {
	t.Helper()
	kv, err := s.Update(ctxT(t), key, []byte(val), expect)
	if err != nil {
		t.Fatalf("Update(%q): %v", key, err)
	}
	return kv
}

func mustDelete(t *testing.T, s raftstore.Store, key string, expect int64) raftstore.KeyValue {
	t.Helper()
	kv, err := s.Delete(ctxT(t), key, expect)
	if err != nil {
		t.Fatalf("Delete(%q): %v", key, err)
	}
	return kv
}

func mustRev(t *testing.T, s raftstore.Store) int64 {
	t.Helper()
	rev, err := s.Revision(ctxT(t))
	if err != nil {
		t.Fatalf("Revision: %v", err)
	}
	return rev
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func sameKV(t *testing.T, what string, got, want raftstore.KeyValue) {
	t.Helper()
	if got.Key != want.Key || !bytes.Equal(got.Value, want.Value) ||
		got.CreateRevision != want.CreateRevision || got.ModRevision != want.ModRevision {
		t.Fatalf("%s: got %s, want %s", what, fmtKV(&got), fmtKV(&want))
	}
}

func fmtKV(kv *raftstore.KeyValue) string {
	if kv == nil {
		return "<nil>"
	}
	return fmt.Sprintf("{%q=%q create=%d mod=%d}", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision)
}

func fmtEvent(ev raftstore.Event) string {
	typ := "PUT"
	if ev.Type == raftstore.EventDelete {
		typ = "DELETE"
	}
	return fmt.Sprintf("%s %s prev=%s", typ, fmtKV(&ev.KV), fmtKV(ev.PrevKV))
}

func sameEvent(t *testing.T, got, want raftstore.Event) {
	t.Helper()
	ok := got.Type == want.Type && got.KV.Key == want.KV.Key && bytes.Equal(got.KV.Value, want.KV.Value) &&
		got.KV.CreateRevision == want.KV.CreateRevision && got.KV.ModRevision == want.KV.ModRevision &&
		(got.PrevKV == nil) == (want.PrevKV == nil)
	if ok && want.PrevKV != nil {
		p, w := got.PrevKV, want.PrevKV
		ok = p.Key == w.Key && bytes.Equal(p.Value, w.Value) && p.CreateRevision == w.CreateRevision && p.ModRevision == w.ModRevision
	}
	if !ok {
		t.Fatalf("event: got %s, want %s", fmtEvent(got), fmtEvent(want))
	}
}

// recv reads one event or fails after eventTimeout.
func recv(t *testing.T, ch <-chan raftstore.Event) raftstore.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("watch channel closed, want an event")
		}
		return ev
	case <-time.After(eventTimeout):
		t.Fatalf("no watch event within %v", eventTimeout)
	}
	return raftstore.Event{}
}

// expectQuiet fails if an event arrives within d.
func expectQuiet(t *testing.T, ch <-chan raftstore.Event, d time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if ok {
			t.Fatalf("unexpected watch event %s", fmtEvent(ev))
		}
		t.Fatalf("watch channel closed unexpectedly")
	case <-time.After(d):
	}
}

func keys(kvs []raftstore.KeyValue) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = kv.Key
	}
	return out
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"kedge.dev/kedge/raftstore"
)

// Create returns the key at a new revision (create == mod == revision
// after), and Get returns exactly that.
func testCreateGet(t *testing.T, s raftstore.Store) {
	before := mustRev(t, s)
	kv := mustCreate(t, s, "/a", "1")
	want := raftstore.KeyValue{Key: "/a", Value: []byte("1"), CreateRevision: before + 1, ModRevision: before + 1}
	sameKV(t, "Create result", kv, want)
	got, err := s.Get(ctxT(t), "/a")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	sameKV(t, "Get", got, want)
	if rev := mustRev(t, s); rev != before+1 {
		t.Fatalf("Revision after create = %d, want %d", rev, before+1)
	}
}

// Create of a present key fails with ErrKeyExists and changes nothing.
func testCreateExisting(t *testing.T, s raftstore.Store) {
	kv := mustCreate(t, s, "/a", "1")
	_, err := s.Create(ctxT(t), "/a", []byte("2"))
	wantErr(t, "second Create", err, raftstore.ErrKeyExists)
	if rev := mustRev(t, s); rev != kv.ModRevision {
		t.Fatalf("failed Create bumped the revision to %d (was %d)", rev, kv.ModRevision)
	}
	got, _ := s.Get(ctxT(t), "/a")
	sameKV(t, "Get after failed Create", got, kv)
}

// An empty store is at revision 1, so 0 stays free for "now".
func testEmptyStoreRevision(t *testing.T, s raftstore.Store) {
	if rev := mustRev(t, s); rev != 1 {
		t.Fatalf("empty store at revision %d, want 1", rev)
	}
	res, err := s.List(ctxT(t), "", raftstore.ListOptions{})
	if err != nil || res.Revision != 1 || len(res.KVs) != 0 {
		t.Fatalf("List of empty store: %+v, %v", res, err)
	}
	kv := mustCreate(t, s, "/first", "1")
	if kv.ModRevision != 2 {
		t.Fatalf("first write at revision %d, want 2", kv.ModRevision)
	}
}

func testGetMissing(t *testing.T, s raftstore.Store) {
	_, err := s.Get(ctxT(t), "/missing")
	wantErr(t, "Get missing", err, raftstore.ErrNotFound)
}

// Update keeps CreateRevision, bumps ModRevision; expectModRev 0 is
// unconditional, a matching one succeeds.
func testUpdate(t *testing.T, s raftstore.Store) {
	c := mustCreate(t, s, "/a", "1")
	u1 := mustUpdate(t, s, "/a", "2", 0)
	sameKV(t, "unconditional Update", u1, raftstore.KeyValue{Key: "/a", Value: []byte("2"), CreateRevision: c.CreateRevision, ModRevision: c.ModRevision + 1})
	u2 := mustUpdate(t, s, "/a", "3", u1.ModRevision)
	sameKV(t, "conditional Update", u2, raftstore.KeyValue{Key: "/a", Value: []byte("3"), CreateRevision: c.CreateRevision, ModRevision: u1.ModRevision + 1})
	got, _ := s.Get(ctxT(t), "/a")
	sameKV(t, "Get after Update", got, u2)
}

func testUpdateMissing(t *testing.T, s raftstore.Store) {
	before := mustRev(t, s)
	_, err := s.Update(ctxT(t), "/missing", []byte("x"), 0)
	wantErr(t, "Update missing", err, raftstore.ErrNotFound)
	if rev := mustRev(t, s); rev != before {
		t.Fatalf("failed Update bumped the revision")
	}
}

func testUpdateConflict(t *testing.T, s raftstore.Store) {
	c := mustCreate(t, s, "/a", "1")
	mustUpdate(t, s, "/a", "2", 0)
	_, err := s.Update(ctxT(t), "/a", []byte("3"), c.ModRevision)
	wantErr(t, "Update with stale expectModRev", err, raftstore.ErrConflict)
	got, _ := s.Get(ctxT(t), "/a")
	if string(got.Value) != "2" {
		t.Fatalf("conflicting Update changed the value to %q", got.Value)
	}
}

// Delete returns the last value with ModRevision = the delete's revision.
func testDelete(t *testing.T, s raftstore.Store) {
	c := mustCreate(t, s, "/a", "1")
	d := mustDelete(t, s, "/a", c.ModRevision)
	sameKV(t, "Delete result", d, raftstore.KeyValue{Key: "/a", Value: []byte("1"), CreateRevision: c.CreateRevision, ModRevision: c.ModRevision + 1})
	_, err := s.Get(ctxT(t), "/a")
	wantErr(t, "Get after Delete", err, raftstore.ErrNotFound)
	if rev := mustRev(t, s); rev != d.ModRevision {
		t.Fatalf("Revision after delete = %d, want %d", rev, d.ModRevision)
	}
}

func testDeleteMissing(t *testing.T, s raftstore.Store) {
	_, err := s.Delete(ctxT(t), "/missing", 0)
	wantErr(t, "Delete missing", err, raftstore.ErrNotFound)
	c := mustCreate(t, s, "/a", "1")
	mustDelete(t, s, "/a", 0)
	_, err = s.Delete(ctxT(t), "/a", c.ModRevision)
	wantErr(t, "Delete deleted", err, raftstore.ErrNotFound)
}

func testDeleteConflict(t *testing.T, s raftstore.Store) {
	c := mustCreate(t, s, "/a", "1")
	_, err := s.Delete(ctxT(t), "/a", c.ModRevision+100)
	wantErr(t, "Delete with wrong expectModRev", err, raftstore.ErrConflict)
	if _, err := s.Get(ctxT(t), "/a"); err != nil {
		t.Fatalf("conflicting Delete removed the key: %v", err)
	}
}

// A key deleted and created again gets a new CreateRevision.
func testRecreateAfterDelete(t *testing.T, s raftstore.Store) {
	mustCreate(t, s, "/a", "1")
	mustDelete(t, s, "/a", 0)
	c := mustCreate(t, s, "/a", "2")
	if c.CreateRevision != c.ModRevision {
		t.Fatalf("recreated key: create %d != mod %d", c.CreateRevision, c.ModRevision)
	}
	got, _ := s.Get(ctxT(t), "/a")
	sameKV(t, "Get recreated", got, c)
}

// Every successful write bumps the revision by exactly one; failed ones
// not at all.
func testRevisionBumpsByOne(t *testing.T, s raftstore.Store) {
	rev := mustRev(t, s)
	steps := []struct {
		name string
		do   func() (raftstore.KeyValue, error)
		ok   bool
	}{
		{"create", func() (raftstore.KeyValue, error) { return s.Create(ctxT(t), "/k", []byte("1")) }, true},
		{"create again", func() (raftstore.KeyValue, error) { return s.Create(ctxT(t), "/k", []byte("1")) }, false},
		{"update", func() (raftstore.KeyValue, error) { return s.Update(ctxT(t), "/k", []byte("2"), 0) }, true},
		{"update conflict", func() (raftstore.KeyValue, error) { return s.Update(ctxT(t), "/k", []byte("2"), 1<<40) }, false},
		{"create other", func() (raftstore.KeyValue, error) { return s.Create(ctxT(t), "/j", []byte("1")) }, true},
		{"delete", func() (raftstore.KeyValue, error) { return s.Delete(ctxT(t), "/k", 0) }, true},
		{"delete missing", func() (raftstore.KeyValue, error) { return s.Delete(ctxT(t), "/k", 0) }, false},
	}
	for _, st := range steps {
		kv, err := st.do()
		if st.ok {
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			rev++
			if kv.ModRevision != rev {
				t.Fatalf("%s: ModRevision %d, want %d", st.name, kv.ModRevision, rev)
			}
		} else if err == nil {
			t.Fatalf("%s: succeeded, want an error", st.name)
		}
		if got := mustRev(t, s); got != rev {
			t.Fatalf("after %s: Revision %d, want %d", st.name, got, rev)
		}
	}
}

// Empty and nil values are stored and read back as empty.
func testEmptyValue(t *testing.T, s raftstore.Store) {
	if _, err := s.Create(ctxT(t), "/empty", nil); err != nil {
		t.Fatalf("Create nil value: %v", err)
	}
	got, err := s.Get(ctxT(t), "/empty")
	if err != nil || len(got.Value) != 0 {
		t.Fatalf("Get empty: %q, %v", got.Value, err)
	}
}

// A cancelled context makes calls fail with the context's error.
func testCancelledContext(t *testing.T, s raftstore.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Create(ctx, "/c", []byte("1"))
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Create with cancelled ctx: %v, want context.Canceled or success", err)
	}
	ch, err := s.Watch(ctx, "/", 0)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Watch with cancelled ctx: %v", err)
		}
		return
	}
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatalf("Watch with cancelled ctx delivered an event")
		}
	case <-time.After(eventTimeout):
		t.Fatalf("Watch with cancelled ctx: channel not closed")
	}
}

func isConflict(err error) bool { return errors.Is(err, raftstore.ErrConflict) }

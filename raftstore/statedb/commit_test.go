package statedb

import (
	"context"
	"database/sql"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"kedge.dev/kedge/raftstore"
)

// fileAppliedIndex reads the applied index committed to the file at path
// through a connection of its own, as another process would see it.
func fileAppliedIndex(t *testing.T, path string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int64
	if err := db.QueryRow("SELECT value FROM meta WHERE name = 'applied_index'").Scan(&v); err != nil {
		t.Fatalf("read applied index of %s: %v", path, err)
	}
	return v
}

func openDeferred(t *testing.T, path string, interval time.Duration, maxPending int) *DB {
	t.Helper()
	d, err := Open(context.Background(), Config{Path: path, CommitInterval: interval, MaxPendingEntries: maxPending})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// Applied entries wait for their commit, yet every read sees them: Get from
// the cache, and the reads that go to SQLite commit them first.
func TestDeferredCommitReadsSeeApplied(t *testing.T) {
	ctx := context.Background()
	reads := []struct {
		name string
		read func(d *DB) error
	}{
		{"Get of a key not cached", func(d *DB) error {
			kv, err := d.Get(ctx, "/b")
			if err == nil && string(kv.Value) != "B" {
				t.Errorf("Get /b = %q, want B", kv.Value)
			}
			return err
		}},
		{"List", func(d *DB) error {
			res, err := d.List(ctx, "/", raftstore.ListOptions{})
			if err == nil && (len(res.KVs) != 2 || res.Revision != 4) {
				t.Errorf("List = %+v, want /a and /b at revision 4", res)
			}
			return err
		}},
		{"Events", func(d *DB) error {
			evs, err := d.Events(ctx, "/", 1, 10)
			if err == nil && len(evs) != 3 {
				t.Errorf("Events = %+v, want 3", evs)
			}
			return err
		}},
		{"HistoryRows", func(d *DB) error {
			n, err := d.HistoryRows(ctx)
			if err == nil && n != 3 {
				t.Errorf("HistoryRows = %d, want 3", n)
			}
			return err
		}},
		{"Backup", func(d *DB) error {
			return d.Backup(ctx, filepath.Join(t.TempDir(), "copy.db"))
		}},
		{"Maintain", func(d *DB) error { return d.Maintain(ctx) }},
	}
	for _, r := range reads {
		t.Run(r.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			d := openDeferred(t, path, time.Hour, 0)
			f := &feeder{t: t, d: d}
			f.apply(Op{Kind: OpCreate, Key: "/a", Value: []byte("a")}, Op{Kind: OpCreate, Key: "/b", Value: []byte("B")})
			f.apply(Op{Kind: OpUpdate, Key: "/a", Value: []byte("A")})
			// The cache dropped /b, as when it is full.
			d.cache.mu.Lock()
			d.cache.remove("/b")
			d.cache.mu.Unlock()
			if got := fileAppliedIndex(t, path); got != 0 {
				t.Fatalf("applied index in the file before any read: %d, want 0 (commit deferred)", got)
			}
			if kv, err := d.Get(ctx, "/a"); err != nil || string(kv.Value) != "A" || kv.ModRevision != 4 {
				t.Fatalf("Get /a = %+v, %v; want A at revision 4", kv, err)
			}
			if got := fileAppliedIndex(t, path); got != 0 {
				t.Fatalf("applied index in the file after a cached Get: %d, want 0", got)
			}
			if err := r.read(d); err != nil {
				t.Fatal(err)
			}
			if got := fileAppliedIndex(t, path); got != 3 {
				t.Fatalf("applied index in the file after %s: %d, want 3", r.name, got)
			}
		})
	}
}

// The interval, the entry bound and Close each commit.
func TestDeferredCommitTriggers(t *testing.T) {
	t.Run("interval", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		d := openDeferred(t, path, 30*time.Millisecond, 0)
		f := &feeder{t: t, d: d}
		f.apply(Op{Kind: OpCreate, Key: "/a", Value: []byte("a")})
		deadline := time.Now().Add(5 * time.Second)
		for fileAppliedIndex(t, path) != 1 {
			if time.Now().After(deadline) {
				t.Fatal("not committed 5s after applying with a 30ms interval")
			}
			time.Sleep(10 * time.Millisecond)
		}
		// A second transaction gets its own timer.
		f.apply(Op{Kind: OpUpdate, Key: "/a", Value: []byte("b")})
		for fileAppliedIndex(t, path) != 2 {
			if time.Now().After(deadline) {
				t.Fatal("second transaction not committed")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("entry bound", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		d := openDeferred(t, path, time.Hour, 3)
		f := &feeder{t: t, d: d}
		f.apply(Op{Kind: OpCreate, Key: "/a"}, Op{Kind: OpCreate, Key: "/b"})
		if got := fileAppliedIndex(t, path); got != 0 {
			t.Fatalf("applied index with 2 of 3 entries pending: %d, want 0", got)
		}
		f.apply(Op{Kind: OpCreate, Key: "/c"})
		if got := fileAppliedIndex(t, path); got != 3 {
			t.Fatalf("applied index after the third entry: %d, want 3", got)
		}
	})
	t.Run("close", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		d := openDeferred(t, path, time.Hour, 0)
		f := &feeder{t: t, d: d}
		f.apply(Op{Kind: OpCreate, Key: "/a", Value: []byte("a")})
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if got := fileAppliedIndex(t, path); got != 1 {
			t.Fatalf("applied index after Close: %d, want 1", got)
		}
	})
}

// A crash loses the entries waiting for their commit from the file only:
// the file is at the applied index it committed, and applying the same
// entries again (as raft does from its log) gives the same state.
func TestDeferredCommitCrashReplays(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	d := openDeferred(t, path, time.Hour, 0)
	entries := []Entry{
		{Index: 1, Term: 1, Op: &Op{Kind: OpCreate, Key: "/a", Value: []byte("1")}},
		{Index: 2, Term: 1, Op: &Op{Kind: OpCreate, Key: "/b", Value: []byte("2")}},
		{Index: 3, Term: 1, Op: &Op{Kind: OpUpdate, Key: "/a", Value: []byte("3")}},
		{Index: 4, Term: 1, Op: &Op{Kind: OpDelete, Key: "/b"}},
	}
	if _, _, err := d.Apply(ctx, entries[:2]); err != nil {
		t.Fatal(err)
	}
	if _, err := d.List(ctx, "/", raftstore.ListOptions{}); err != nil { // commits 1-2
		t.Fatal(err)
	}
	want, _, err := d.Apply(ctx, entries[2:])
	if err != nil {
		t.Fatal(err)
	}
	// The files as a SIGKILL now leaves them: SQLite ignores WAL frames
	// of a transaction without its commit.
	crashed := filepath.Join(t.TempDir(), "state.db")
	for _, suffix := range []string{"", "-wal"} {
		copyFileT(t, path+suffix, crashed+suffix)
	}
	c := openDeferred(t, crashed, time.Hour, 0)
	if idx, _ := c.AppliedIndex(); idx != 2 {
		t.Fatalf("applied index after the crash: %d, want 2", idx)
	}
	got, _, err := c.Apply(ctx, entries) // raft replays from its log
	if err != nil {
		t.Fatal(err)
	}
	if !got[0].Skipped || !got[1].Skipped || got[2].Skipped || got[3].Skipped {
		t.Fatalf("replay skipped %+v, want the two committed entries only", got)
	}
	for i := 2; i < 4; i++ {
		if got[i].KV.ModRevision != want[i-2].KV.ModRevision || (got[i].Err == nil) != (want[i-2].Err == nil) {
			t.Errorf("entry %d replayed as %+v, applied as %+v", i+1, got[i], want[i-2])
		}
	}
	res, err := c.List(ctx, "/", raftstore.ListOptions{})
	if err != nil || len(res.KVs) != 1 || string(res.KVs[0].Value) != "3" || res.Revision != 5 {
		t.Fatalf("state after replay: %+v, %v; want /a=3 at revision 5", res, err)
	}
}

// Restore takes the place of what waits for its commit, and the DB goes on
// applying after it.
func TestDeferredCommitRestore(t *testing.T) {
	ctx := context.Background()
	src := openT(t, "")
	sf := &feeder{t: t, d: src}
	sf.apply(Op{Kind: OpCreate, Key: "/snap", Value: []byte("s")})
	sf.apply(Op{Kind: OpCreate, Key: "/more", Value: []byte("m")})
	snap := filepath.Join(t.TempDir(), "snap.db")
	if err := src.Backup(ctx, snap); err != nil {
		t.Fatal(err)
	}
	d := openDeferred(t, filepath.Join(t.TempDir(), "state.db"), time.Hour, 0)
	f := &feeder{t: t, d: d}
	f.apply(Op{Kind: OpCreate, Key: "/snap", Value: []byte("s")})
	r, err := os.Open(snap)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := d.Restore(ctx, r); err != nil {
		t.Fatal(err)
	}
	if idx, _ := d.AppliedIndex(); idx != 2 {
		t.Fatalf("applied index after restore: %d, want 2", idx)
	}
	f.index = 2
	f.apply(Op{Kind: OpUpdate, Key: "/snap", Value: []byte("after")})
	if kv, err := d.Get(ctx, "/snap"); err != nil || string(kv.Value) != "after" {
		t.Fatalf("Get after restore and apply: %+v, %v", kv, err)
	}
}

func copyFileT(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

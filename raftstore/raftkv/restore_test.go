package raftkv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"kedge.dev/kedge/raftstore"
)

// fill writes n keys under /r/ and updates half of them; it returns the
// current revision.
func fill(t *testing.T, s *Store, n int) int64 {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		if _, err := s.Create(ctx, fmt.Sprintf("/r/%03d", i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i += 2 {
		if _, err := s.Update(ctx, fmt.Sprintf("/r/%03d", i), []byte(fmt.Sprint("u", i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	rev, _ := s.Revision(ctx)
	return rev
}

func listAll(t *testing.T, s *Store) []raftstore.KeyValue {
	t.Helper()
	res, err := s.List(context.Background(), "/r/", raftstore.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.KVs
}

// A backup taken while the store runs restores onto a new data dir as a
// cluster of one with the same keys, values and revisions; later writes
// continue the revision sequence and old revisions can still be watched.
func TestBackupRestoreKeepsRevisions(t *testing.T) {
	ctx := context.Background()
	src := openT(t, testConfig(t, t.TempDir()))
	rev := fill(t, src, 40)
	want := listAll(t, src)
	backup := filepath.Join(t.TempDir(), "backup.db")
	info, err := Backup(ctx, src.cfg.DataDir, backup)
	if err != nil {
		t.Fatal(err)
	}
	if info.Revision != rev || info.Keys != 40 {
		t.Fatalf("backup info %+v, want revision %d and 40 keys", info, rev)
	}
	if _, err := Backup(ctx, src.cfg.DataDir, backup); err == nil {
		t.Fatal("Backup over an existing file succeeded")
	}
	// Writes after the backup are not in it.
	if _, err := src.Create(ctx, "/r/late", []byte("x")); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.NodeID = "restored"
	if _, err := Restore(ctx, cfg, backup); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, cfg, backup); !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("second Restore into the same dir: %v, want ErrDataDirInUse", err)
	}
	dst := openT(t, cfg)
	if got, _ := dst.Revision(ctx); got != rev {
		t.Fatalf("restored revision %d, want %d", got, rev)
	}
	got := listAll(t, dst)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("restored keys differ:\n got %v\nwant %v", got, want)
	}
	if _, err := dst.Get(ctx, "/r/late"); !errors.Is(err, raftstore.ErrNotFound) {
		t.Fatalf("write made after the backup is present: %v", err)
	}
	// A client's resourceVersion from before the backup still works for
	// compare-and-swap and watch.
	kv, err := dst.Update(ctx, "/r/001", []byte("cas"), want[1].ModRevision)
	if err != nil {
		t.Fatalf("CAS with a pre-backup mod revision: %v", err)
	}
	if kv.ModRevision != rev+1 {
		t.Fatalf("first write after restore got revision %d, want %d", kv.ModRevision, rev+1)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := dst.Watch(wctx, "/r/", rev-1)
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.KV.ModRevision != rev {
		t.Fatalf("watch from %d delivered revision %d first", rev-1, ev.KV.ModRevision)
	}
	if ev := <-ch; ev.KV.ModRevision != rev+1 || ev.KV.Key != "/r/001" {
		t.Fatalf("watch delivered %+v, want the CAS at %d", ev.KV, rev+1)
	}
	// The restored store survives a restart (raft state, term and
	// membership were written consistently).
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	again := openT(t, cfg)
	if got, _ := again.Revision(ctx); got != rev+1 {
		t.Fatalf("revision after restart %d, want %d", got, rev+1)
	}
	if _, err := again.Create(ctx, "/r/after-restart", nil); err != nil {
		t.Fatal(err)
	}
}

func TestRestoreRefusesBadBackups(t *testing.T) {
	ctx := context.Background()
	garbage := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(garbage, []byte("this is not a database, just some text of some length"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := Restore(ctx, testConfig(t, dir), garbage); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Restore of garbage: %v, want ErrCorrupt", err)
	}
	if _, err := Restore(ctx, testConfig(t, dir), filepath.Join(dir, "missing.db")); !errors.Is(err, ErrNoState) {
		t.Fatalf("Restore of a missing file: %v, want ErrNoState", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("failed restores left files behind: %v", entries)
	}
	if _, err := Backup(ctx, t.TempDir(), filepath.Join(t.TempDir(), "b.db")); !errors.Is(err, ErrNoState) {
		t.Fatalf("Backup of an empty dir: %v, want ErrNoState", err)
	}
}

// An empty store (applied index 0) backs up and restores too.
func TestRestoreEmptyStore(t *testing.T) {
	ctx := context.Background()
	src := openT(t, testConfig(t, t.TempDir()))
	backup := filepath.Join(t.TempDir(), "b.db")
	if _, err := Backup(ctx, src.cfg.DataDir, backup); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, t.TempDir())
	if _, err := Restore(ctx, cfg, backup); err != nil {
		t.Fatal(err)
	}
	dst := openT(t, cfg)
	if kv, err := dst.Create(ctx, "/r/first", nil); err != nil || kv.ModRevision != 2 {
		t.Fatalf("first write after restoring an empty store: %+v, %v", kv, err)
	}
}

// ResetCluster keeps every key, from the snapshot and from the log after
// it, and leaves a store that opens as a single voter.
func TestResetClusterKeepsData(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, testConfig(t, dir))
	fill(t, s, 30)
	if err := s.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	rev := fill2(t, s)
	want := listAll(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, dir)
	if err := ResetCluster(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	r := openT(t, cfg)
	if got, _ := r.Revision(ctx); got != rev {
		t.Fatalf("revision after reset %d, want %d", got, rev)
	}
	if got := listAll(t, r); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("keys after reset differ:\n got %v\nwant %v", got, want)
	}
	servers := r.raft.GetConfiguration()
	if err := servers.Error(); err != nil {
		t.Fatal(err)
	}
	if n := len(servers.Configuration().Servers); n != 1 {
		t.Fatalf("%d servers after reset, want 1", n)
	}
	if kv, err := r.Create(ctx, "/r/new", nil); err != nil || kv.ModRevision != rev+1 {
		t.Fatalf("write after reset: %+v, %v", kv, err)
	}
	empty := t.TempDir()
	if err := ResetCluster(ctx, testConfig(t, empty)); !errors.Is(err, ErrNoState) {
		t.Fatalf("ResetCluster of an empty data dir: %v, want ErrNoState", err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Fatalf("ResetCluster of an empty dir created %v", entries)
	}
}

// fill2 updates every /r/ key once more, after a snapshot.
func fill2(t *testing.T, s *Store) int64 {
	t.Helper()
	ctx := context.Background()
	for _, kv := range listAll(t, s) {
		if _, err := s.Update(ctx, kv.Key, []byte("after-snapshot"), kv.ModRevision); err != nil {
			t.Fatal(err)
		}
	}
	rev, _ := s.Revision(ctx)
	return rev
}

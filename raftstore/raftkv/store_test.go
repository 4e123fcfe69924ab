package raftkv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"kedge.dev/kedge/raftstore"
	"kedge.dev/kedge/raftstore/storetest"
)

// testConfig is a single-voter config with fast timeouts, loopback on a
// free port, and background loops off (tests that need them turn them on).
func testConfig(t testing.TB, dir string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.NodeID = "node1"
	cfg.BindAddr = "127.0.0.1:0"
	cfg.HeartbeatTimeout = 50 * time.Millisecond
	cfg.ElectionTimeout = 50 * time.Millisecond
	cfg.LeaderLeaseTimeout = 50 * time.Millisecond
	cfg.CommitTimeout = 5 * time.Millisecond
	cfg.CompactInterval = -1
	cfg.MaintenanceInterval = -1
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return cfg
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func openT(t testing.TB, cfg Config) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) raftstore.Store {
		return openT(t, testConfig(t, t.TempDir()))
	})
}

func TestConformanceLinearizableReads(t *testing.T) {
	storetest.Run(t, func(t *testing.T) raftstore.Store {
		cfg := testConfig(t, t.TempDir())
		cfg.LinearizableReads = true
		return openT(t, cfg)
	})
}

// Tiny replay pages make every watch replay cross many pages while writers
// run, exercising the page-to-page and replay-to-live hand-overs.
func TestConformanceSmallReplayPages(t *testing.T) {
	storetest.Run(t, func(t *testing.T) raftstore.Store {
		cfg := testConfig(t, t.TempDir())
		cfg.WatchReplayBatch = 3
		return openT(t, cfg)
	})
}

func TestReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openT(t, testConfig(t, dir))
	var last raftstore.KeyValue
	for i := 0; i < 20; i++ {
		kv, err := s.Create(ctx, fmt.Sprintf("/k/%02d", i), []byte(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		last = kv
	}
	if _, err := s.Delete(ctx, "/k/05", 0); err != nil {
		t.Fatal(err)
	}
	upd, err := s.Update(ctx, "/k/06", []byte("six"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Get(ctx, "/k/01"); !errors.Is(err, raftstore.ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}

	s2 := openT(t, testConfig(t, dir))
	rev, _ := s2.Revision(ctx)
	if rev != upd.ModRevision {
		t.Fatalf("revision after reopen %d, want %d (replayed entries applied twice?)", rev, upd.ModRevision)
	}
	got, err := s2.Get(ctx, "/k/06")
	if err != nil || string(got.Value) != "six" || got.ModRevision != upd.ModRevision {
		t.Fatalf("Get after reopen: %+v %v", got, err)
	}
	if _, err := s2.Get(ctx, "/k/05"); !errors.Is(err, raftstore.ErrNotFound) {
		t.Fatalf("deleted key after reopen: %v", err)
	}
	res, err := s2.List(ctx, "/k/", raftstore.ListOptions{})
	if err != nil || len(res.KVs) != 19 {
		t.Fatalf("List after reopen: %d keys %v", len(res.KVs), err)
	}
	// Writes continue from the persisted revision.
	kv, err := s2.Create(ctx, "/k/new", nil)
	if err != nil || kv.ModRevision != rev+1 {
		t.Fatalf("Create after reopen: %+v %v", kv, err)
	}
	// Watch from an old revision replays history written before the restart.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := s2.Watch(wctx, "/k/", last.ModRevision-1)
	if err != nil {
		t.Fatal(err)
	}
	wantRevs := []int64{last.ModRevision, last.ModRevision + 1, last.ModRevision + 2, last.ModRevision + 3}
	for _, want := range wantRevs {
		select {
		case ev := <-ch:
			if ev.KV.ModRevision != want {
				t.Fatalf("replayed revision %d, want %d", ev.KV.ModRevision, want)
			}
			if want == last.ModRevision+1 && (ev.Type != raftstore.EventDelete || string(ev.KV.Value) != "5") {
				t.Fatalf("replayed delete: %+v", ev)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no replayed event for revision %d", want)
		}
	}
}

// A snapshot followed by the loss of state.db: Open restores the state from
// the snapshot and replays the log entries after it.
func TestRestoreFromSnapshotWhenStateLost(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openT(t, testConfig(t, dir))
	for i := 0; i < 30; i++ {
		if _, err := s.Create(ctx, fmt.Sprintf("/s/%02d", i), []byte("before")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	for i := 0; i < 5; i++ {
		if _, err := s.Update(ctx, fmt.Sprintf("/s/%02d", i), []byte("after"), 0); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := s.Revision(ctx)
	s.Close()
	for _, f := range []string{"state.db", "state.db-wal", "state.db-shm"} {
		os.Remove(filepath.Join(dir, f))
	}
	s2 := openT(t, testConfig(t, dir))
	if rev, _ := s2.Revision(ctx); rev != want {
		t.Fatalf("revision after restore %d, want %d", rev, want)
	}
	for i, v := range map[int]string{0: "after", 4: "after", 5: "before", 29: "before"} {
		got, err := s2.Get(ctx, fmt.Sprintf("/s/%02d", i))
		if err != nil || string(got.Value) != v {
			t.Fatalf("/s/%02d = %q %v, want %q", i, got.Value, err, v)
		}
	}
}

// Corrupt files make Open fail with the file named, and are left as they
// were.
func TestOpenCorrupt(t *testing.T) {
	for _, file := range []string{"state.db", "raft.db"} {
		t.Run(file, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, testConfig(t, dir))
			if _, err := s.Create(context.Background(), "/a", []byte("1")); err != nil {
				t.Fatal(err)
			}
			s.Close()
			path := filepath.Join(dir, file)
			garbage := bytes.Repeat([]byte("not a database "), 300)
			if err := os.WriteFile(path, garbage, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(context.Background(), testConfig(t, dir))
			if err == nil {
				t.Fatalf("Open with corrupt %s succeeded", file)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name %s: %v", path, err)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, garbage) {
				t.Fatalf("%s was modified by the failed Open", file)
			}
		})
	}
}

// The automatic compactor keeps the newest CompactKeepRevisions revisions
// and the history table stays bounded while keys are rewritten.
func TestAutoCompactionBoundsHistory(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.CompactInterval = 10 * time.Millisecond
	cfg.CompactKeepRevisions = 20
	cfg.CompactKeepDuration = 0
	cfg.MaintenanceInterval = 20 * time.Millisecond
	s := openT(t, cfg)
	ctx := context.Background()
	const keys = 5
	for i := 0; i < keys; i++ {
		if _, err := s.Create(ctx, fmt.Sprintf("/a/%d", i), []byte("0")); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 400; i++ {
		if _, err := s.Update(ctx, fmt.Sprintf("/a/%d", i%keys), []byte(fmt.Sprint(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	rev, _ := s.Revision(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for s.db.CompactRevision() < rev-cfg.CompactKeepRevisions {
		if time.Now().After(deadline) {
			t.Fatalf("compacted revision %d, want %d", s.db.CompactRevision(), rev-cfg.CompactKeepRevisions)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c := s.db.CompactRevision(); c > rev-cfg.CompactKeepRevisions {
		t.Fatalf("compacted to %d, beyond the kept %d revisions of %d", c, cfg.CompactKeepRevisions, rev)
	}
	rows, err := s.db.HistoryRows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if max := int64(keys) + cfg.CompactKeepRevisions; rows > max {
		t.Fatalf("history holds %d rows, want at most %d", rows, max)
	}
	if _, err := s.List(ctx, "/a/", raftstore.ListOptions{Revision: rev - cfg.CompactKeepRevisions - 1}); !errors.Is(err, raftstore.ErrCompacted) {
		t.Fatalf("List below compaction: %v, want ErrCompacted", err)
	}
	if _, err := s.List(ctx, "/a/", raftstore.ListOptions{Revision: rev - cfg.CompactKeepRevisions}); err != nil {
		t.Fatalf("List at the oldest kept revision: %v", err)
	}
}

// A watcher that stops reading is dropped (its channel closes) and writers
// are not slowed down by it.
func TestSlowWatcherIsClosed(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.WatchBufferSize = 8
	s := openT(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := s.Watch(ctx, "/", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if _, err := s.Create(ctx, fmt.Sprintf("/x/%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				if n >= 200 {
					t.Fatalf("channel closed after all %d events", n)
				}
				return
			}
			n++
		case <-timeout:
			t.Fatalf("slow watcher's channel not closed (%d events read)", n)
		}
	}
}

// Close ends watch channels and leaks no goroutine.
func TestCloseEndsWatchesAndGoroutines(t *testing.T) {
	before := countGoroutines()
	cfg := testConfig(t, t.TempDir())
	cfg.CompactInterval = time.Millisecond * 10
	cfg.MaintenanceInterval = time.Millisecond * 10
	ctx := context.Background()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Watch(ctx, "/", 0)
	if err != nil {
		t.Fatal(err)
	}
	// A watcher that never reads must not block Close.
	stuck, err := s.Watch(ctx, "/", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		s.Create(ctx, fmt.Sprintf("/g/%d", i), nil)
	}
	_ = stuck
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range ch {
	}
	if _, err := s.Watch(ctx, "/", 0); !errors.Is(err, raftstore.ErrClosed) {
		t.Fatalf("Watch after Close: %v", err)
	}
	if _, err := s.Create(ctx, "/z", nil); !errors.Is(err, raftstore.ErrClosed) {
		t.Fatalf("Create after Close: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for countGoroutines() > before {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before Open, %d after Close", before, countGoroutines())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Concurrent writers share fsyncs: a burst must not take one commit each.
func TestConcurrentWritesAreBatched(t *testing.T) {
	s := openT(t, testConfig(t, t.TempDir()))
	const n = 2000
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 128)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := s.Create(context.Background(), fmt.Sprintf("/b/%d", i), []byte("value")); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	t.Logf("%d concurrent creates in %v (%.0f/s)", n, d, n/d.Seconds())
}

// A state.db that is ahead of raft.db (raft.db lost) is refused rather than
// silently skipping new writes.
func TestOpenRefusesStateAheadOfRaftLog(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, testConfig(t, dir))
	if _, err := s.Create(context.Background(), "/a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, f := range []string{"raft.db", "raft.db-wal", "raft.db-shm"} {
		os.Remove(filepath.Join(dir, f))
	}
	_, err := Open(context.Background(), testConfig(t, dir))
	if err == nil || !strings.Contains(err.Error(), "state.db applied raft entries") {
		t.Fatalf("Open with lost raft.db: %v", err)
	}
}

package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"kedge.dev/kedge/raftstore"
)

func watchT(t *testing.T, s raftstore.Store, prefix string, after int64) <-chan raftstore.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := s.Watch(ctx, prefix, after)
	if err != nil {
		t.Fatalf("Watch(%q, %d): %v", prefix, after, err)
	}
	return ch
}

// afterRev 0 delivers only changes made after the call.
func testWatchFromNow(t *testing.T, s raftstore.Store) {
	mustCreate(t, s, "/w/old", "1")
	ch := watchT(t, s, "/w/", 0)
	kv := mustCreate(t, s, "/w/new", "2")
	sameEvent(t, recv(t, ch), raftstore.Event{Type: raftstore.EventPut, KV: kv})
	expectQuiet(t, ch, 100*time.Millisecond)
}

// A watch from an old revision replays history, then continues live.
func testWatchFromRevision(t *testing.T, s raftstore.Store) {
	a := mustCreate(t, s, "/w/a", "1")
	u := mustUpdate(t, s, "/w/a", "2", 0)
	b := mustCreate(t, s, "/w/b", "3")
	ch := watchT(t, s, "/w/", a.ModRevision)
	sameEvent(t, recv(t, ch), raftstore.Event{Type: raftstore.EventPut, KV: u, PrevKV: &a})
	sameEvent(t, recv(t, ch), raftstore.Event{Type: raftstore.EventPut, KV: b})
	c := mustCreate(t, s, "/w/c", "4")
	sameEvent(t, recv(t, ch), raftstore.Event{Type: raftstore.EventPut, KV: c})
	expectQuiet(t, ch, 100*time.Millisecond)
}

// Only keys under the prefix are delivered.
func testWatchPrefix(t *testing.T, s raftstore.Store) {
	start := mustRev(t, s)
	mustCreate(t, s, "/other/x", "1")
	in := mustCreate(t, s, "/w/x", "1")
	mustCreate(t, s, "/w2", "1")
	ch := watchT(t, s, "/w/", start)
	sameEvent(t, recv(t, ch), raftstore.Event{Type: raftstore.EventPut, KV: in})
	mustCreate(t, s, "/other/y", "1")
	in2 := mustCreate(t, s, "/w/y", "1")
	sameEvent(t, recv(t, ch), raftstore.Event{Type: raftstore.EventPut, KV: in2})
	expectQuiet(t, ch, 100*time.Millisecond)
}

// Deletes carry the last value in KV and the previous key in PrevKV, both
// replayed from history and live.
func testWatchDeleteAndPrevKV(t *testing.T, s raftstore.Store) {
	start := mustRev(t, s)
	live := watchT(t, s, "/d/", 0)
	c := mustCreate(t, s, "/d/k", "v1")
	u := mustUpdate(t, s, "/d/k", "v2", c.ModRevision)
	d := mustDelete(t, s, "/d/k", u.ModRevision)
	r := mustCreate(t, s, "/d/k", "v3")
	want := []raftstore.Event{
		{Type: raftstore.EventPut, KV: c},
		{Type: raftstore.EventPut, KV: u, PrevKV: &c},
		{Type: raftstore.EventDelete, KV: d, PrevKV: &u},
		{Type: raftstore.EventPut, KV: r},
	}
	if string(d.Value) != "v2" {
		t.Fatalf("Delete returned value %q, want v2", d.Value)
	}
	replay := watchT(t, s, "/d/", start)
	for i, w := range want {
		t.Run(fmt.Sprintf("live%d", i), func(t *testing.T) { sameEvent(t, recv(t, live), w) })
		t.Run(fmt.Sprintf("replay%d", i), func(t *testing.T) { sameEvent(t, recv(t, replay), w) })
	}
}

// Cancelling the context closes the channel.
func testWatchCancel(t *testing.T, s raftstore.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := s.Watch(ctx, "/", 0)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	cancel()
	deadline := time.After(eventTimeout)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("channel not closed after cancel")
		}
	}
}

// A watch started from an old revision while writers keep writing sees
// every revision after it exactly once, in order: no gap and no duplicate
// where the history replay hands over to live events.
func testWatchHandOver(t *testing.T, s raftstore.Store) {
	const writers, perWriter = 4, 60
	for i := 0; i < 50; i++ {
		mustCreate(t, s, fmt.Sprintf("/h/pre%d", i), "v")
	}
	start := mustRev(t, s) - 40
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				if _, err := s.Create(ctx, fmt.Sprintf("/h/w%d-%d", w, i), []byte("v")); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	// Start watches while the writers run.
	var chans []<-chan raftstore.Event
	for i := 0; i < 3; i++ {
		time.Sleep(time.Duration(i) * 5 * time.Millisecond)
		chans = append(chans, watchT(t, s, "/h/", start))
	}
	wg.Wait()
	end := mustRev(t, s)
	for i, ch := range chans {
		next := start + 1
		for next <= end {
			ev := recv(t, ch)
			if ev.KV.ModRevision != next {
				t.Fatalf("watch %d: got revision %d, want %d", i, ev.KV.ModRevision, next)
			}
			next++
		}
		expectQuiet(t, ch, 50*time.Millisecond)
	}
}

// After Compact(rev), reads and watches below rev fail with ErrCompacted;
// at rev and above they work, and current values are untouched.
func testCompact(t *testing.T, s raftstore.Store) {
	a := mustCreate(t, s, "/c/a", "1")
	mustUpdate(t, s, "/c/a", "2", 0)
	b := mustCreate(t, s, "/c/b", "1")
	mustDelete(t, s, "/c/b", 0)
	mid := mustUpdate(t, s, "/c/a", "3", 0)
	last := mustCreate(t, s, "/c/c", "1")
	if err := s.Compact(ctxT(t), mid.ModRevision); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	_, err := s.List(ctxT(t), "/c/", raftstore.ListOptions{Revision: a.ModRevision})
	wantErr(t, "List below compacted", err, raftstore.ErrCompacted)
	_, err = s.Watch(ctxT(t), "/c/", b.ModRevision)
	wantErr(t, "Watch below compacted", err, raftstore.ErrCompacted)
	res, err := s.List(ctxT(t), "/c/", raftstore.ListOptions{Revision: mid.ModRevision})
	if err != nil {
		t.Fatalf("List at compacted revision: %v", err)
	}
	if len(res.KVs) != 1 {
		t.Fatalf("List at compacted revision: keys %v, want [/c/a]", keys(res.KVs))
	}
	sameKV(t, "/c/a at compacted revision", res.KVs[0], mid)
	ch := watchT(t, s, "/c/", mid.ModRevision)
	sameEvent(t, recv(t, ch), raftstore.Event{Type: raftstore.EventPut, KV: last})
	got, err := s.Get(ctxT(t), "/c/a")
	if err != nil {
		t.Fatalf("Get after compact: %v", err)
	}
	sameKV(t, "Get after compact", got, mid)
	if err := s.Compact(ctxT(t), mid.ModRevision-1); err != nil {
		t.Fatalf("Compact below the compacted revision should be a no-op: %v", err)
	}
	if rev := mustRev(t, s); rev != last.ModRevision {
		t.Fatalf("Compact changed the revision to %d", rev)
	}
}

func testCompactFuture(t *testing.T, s raftstore.Store) {
	mustCreate(t, s, "/a", "1")
	err := s.Compact(ctxT(t), mustRev(t, s)+5)
	wantErr(t, "Compact future", err, raftstore.ErrFutureRevision)
}

// Concurrent creates each get their own revision; together they account
// for every revision.
func testConcurrentCreates(t *testing.T, s raftstore.Store) {
	const workers, each = 8, 40
	start := mustRev(t, s)
	var mu sync.Mutex
	seen := make(map[int64]string)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				key := fmt.Sprintf("/cc/%d/%d", w, i)
				kv, err := s.Create(context.Background(), key, []byte(key))
				if err != nil {
					t.Errorf("Create %s: %v", key, err)
					return
				}
				mu.Lock()
				if other, dup := seen[kv.ModRevision]; dup {
					t.Errorf("revision %d given to %s and %s", kv.ModRevision, other, key)
				}
				seen[kv.ModRevision] = key
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if end := mustRev(t, s); end != start+workers*each || len(seen) != workers*each {
		t.Fatalf("revision %d -> %d with %d distinct revisions, want +%d", start, end, len(seen), workers*each)
	}
	res, err := s.List(ctxT(t), "/cc/", raftstore.ListOptions{})
	if err != nil || len(res.KVs) != workers*each {
		t.Fatalf("List: %d keys, %v", len(res.KVs), err)
	}
}

// Read-modify-write loops with expectModRev never lose an update.
func testConcurrentConditionalUpdates(t *testing.T, s raftstore.Store) {
	const workers, each = 4, 15
	mustCreate(t, s, "/counter", "0")
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; {
				cur, err := s.Get(context.Background(), "/counter")
				if err != nil {
					t.Errorf("Get: %v", err)
					return
				}
				var n int
				fmt.Sscan(string(cur.Value), &n)
				_, err = s.Update(context.Background(), "/counter", []byte(fmt.Sprint(n+1)), cur.ModRevision)
				if err == nil {
					i++
				} else if !isConflict(err) {
					t.Errorf("Update: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got, _ := s.Get(ctxT(t), "/counter")
	if string(got.Value) != fmt.Sprint(workers*each) {
		t.Fatalf("counter = %s, want %d", got.Value, workers*each)
	}
}

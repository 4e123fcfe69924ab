package statedb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kedge.dev/kedge/raftstore"
)

func openCacheT(t *testing.T, cacheBytes int64) *DB {
	t.Helper()
	d, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "state.db"), ValueCacheBytes: cacheBytes})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// dump is every kv_log row and the meta table: the whole persisted state.
func dump(t *testing.T, d *DB) string {
	t.Helper()
	var out bytes.Buffer
	rows, err := d.db.R.Query("SELECT revision, key, create_revision, prev_revision, deleted, value FROM kv_log ORDER BY revision")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var rev, create, prev int64
		var key, value []byte
		var deleted bool
		if err := rows.Scan(&rev, &key, &create, &prev, &deleted, &value); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%d %s %d %d %v %q\n", rev, key, create, prev, deleted, value)
	}
	m, err := readMeta(context.Background(), d.db.R)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&out, "meta %+v\n", m)
	return out.String()
}

// The cache changes no decision: random batches of creates, updates (blind
// and conditional), deletes and compactions give the same results, events,
// Gets and persisted rows (prev_revision included) with and without it,
// also with a cache so small that it evicts all the time.
func TestCacheChangesNoDecision(t *testing.T) {
	for _, size := range []int64{4 << 20, 600} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			with, without := openCacheT(t, size), openCacheT(t, -1)
			rng := rand.New(rand.NewSource(1))
			keys := []string{"a", "b", "c", "d", "e"}
			index := uint64(0)
			for batch := 0; batch < 300; batch++ {
				var entries []Entry
				for i := rng.Intn(6) + 1; i > 0; i-- {
					index++
					op := Op{Key: keys[rng.Intn(len(keys))], Value: []byte(fmt.Sprintf("v%d-%s", index, bytes.Repeat([]byte("x"), rng.Intn(200))))}
					switch r := rng.Intn(10); {
					case r < 3:
						op.Kind = OpCreate
					case r < 6:
						op.Kind = OpUpdate
					case r < 8:
						op.Kind, op.Value = OpDelete, nil
					case r < 9:
						op.Kind, op.Key, op.Value, op.Revision = OpCompact, "", nil, with.Revision()-int64(rng.Intn(5))
					default:
						op.Kind, op.ExpectModRev = OpUpdate, with.Revision()-int64(rng.Intn(3))
					}
					entries = append(entries, Entry{Index: index, Term: 1, Op: &op})
				}
				r1, e1, err1 := with.Apply(context.Background(), entries)
				r2, e2, err2 := without.Apply(context.Background(), entries)
				if err1 != nil || err2 != nil {
					t.Fatalf("batch %d: %v / %v", batch, err1, err2)
				}
				if fmt.Sprint(r1) != fmt.Sprint(r2) || !reflect.DeepEqual(e1, e2) {
					t.Fatalf("batch %d differs:\nwith cache    %v %v\nwithout cache %v %v", batch, r1, e1, r2, e2)
				}
				for _, k := range keys {
					g1, err1 := with.Get(context.Background(), k)
					g2, err2 := without.Get(context.Background(), k)
					if fmt.Sprint(g1, err1) != fmt.Sprint(g2, err2) {
						t.Fatalf("batch %d: Get(%s) = %v %v with cache, %v %v without", batch, k, g1, err1, g2, err2)
					}
				}
			}
			if a, b := dump(t, with), dump(t, without); a != b {
				t.Fatalf("persisted state differs:\nwith cache\n%s\nwithout\n%s", a, b)
			}
			with.cache.mu.Lock()
			defer with.cache.mu.Unlock()
			if with.cache.bytes > size || with.cache.bytes < 0 || len(with.cache.entries) != with.cache.lru.Len() {
				t.Fatalf("cache accounting: %d bytes (max %d), %d entries, %d in LRU", with.cache.bytes, size, len(with.cache.entries), with.cache.lru.Len())
			}
		})
	}
}

// A Get never returns an older row than a read through SQLite that
// finished before it started, nor a row such a later read does not see,
// while a writer applies new rows of the key all the time: the cache and
// SQLite change together for readers, also while applied rows wait for
// their commit (a read through SQLite commits them first).
func TestCacheReadsAreLinearizableWithSQLiteReads(t *testing.T) {
	for _, interval := range []time.Duration{0, 50 * time.Millisecond} {
		t.Run(fmt.Sprintf("commit interval %v", interval), func(t *testing.T) {
			d, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "state.db"), CommitInterval: interval})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { d.Close() })
			testCacheReadsAreLinearizable(t, d)
		})
	}
}

func testCacheReadsAreLinearizable(t *testing.T, d *DB) {
	ctx := context.Background()
	f := &feeder{t: t, d: d}
	f.apply(Op{Kind: OpCreate, Key: "/k", Value: []byte("0")})
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; !stop.Load(); i++ {
			entries := []Entry{{Index: uint64(i) + 1, Term: 1, Op: &Op{Kind: OpUpdate, Key: "/k", Value: []byte(fmt.Sprint(i))}}}
			if _, _, err := d.Apply(ctx, entries); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()
	listRev := func() int64 {
		res, err := d.List(ctx, "/k", raftstore.ListOptions{})
		if err != nil || len(res.KVs) != 1 {
			t.Fatalf("List: %v %v", res, err)
		}
		return res.KVs[0].ModRevision
	}
	deadline := time.Now().Add(2 * time.Second)
	checks := 0
	for time.Now().Before(deadline) && !t.Failed() {
		before := listRev()
		kv, err := d.Get(ctx, "/k")
		if err != nil {
			t.Fatal(err)
		}
		after := listRev()
		if kv.ModRevision < before || kv.ModRevision > after {
			t.Fatalf("Get saw revision %d between SQLite reads at %d and %d", kv.ModRevision, before, after)
		}
		checks++
	}
	t.Logf("%d Get/List interleavings checked", checks)
}

func TestCacheGetReturnsACopy(t *testing.T) {
	d := openCacheT(t, 4<<20)
	f := &feeder{t: t, d: d}
	f.apply(Op{Kind: OpCreate, Key: "k", Value: []byte("value")})
	for i := 0; i < 2; i++ { // the second Get hits what the first filled
		kv, err := d.Get(context.Background(), "k")
		if err != nil {
			t.Fatal(err)
		}
		if string(kv.Value) != "value" {
			t.Fatalf("Get %d: %q", i, kv.Value)
		}
		kv.Value[0] = 'X'
	}
}

// A restored file replaces what the cache knew.
func TestCacheIsResetByRestore(t *testing.T) {
	ctx := context.Background()
	src := openCacheT(t, 4<<20)
	(&feeder{t: t, d: src}).apply(Op{Kind: OpCreate, Key: "k", Value: []byte("old")})
	backup := filepath.Join(t.TempDir(), "backup.db")
	if err := src.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	d := openCacheT(t, 4<<20)
	f := &feeder{t: t, d: d}
	f.apply(Op{Kind: OpCreate, Key: "k", Value: []byte("new")}, Op{Kind: OpCreate, Key: "gone", Value: []byte("x")})
	if kv, err := d.Get(ctx, "k"); err != nil || string(kv.Value) != "new" {
		t.Fatalf("Get before restore: %v %v", kv, err)
	}
	r, err := os.Open(backup)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := d.Restore(ctx, r); err != nil {
		t.Fatal(err)
	}
	if kv, err := d.Get(ctx, "k"); err != nil || string(kv.Value) != "old" {
		t.Fatalf("Get after restore: %q %v, want the restored value", kv.Value, err)
	}
	if _, err := d.Get(ctx, "gone"); !errors.Is(err, raftstore.ErrNotFound) {
		t.Fatalf("Get of a key the restored file lacks: %v", err)
	}
}

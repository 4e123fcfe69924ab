package statedb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kedge.dev/kedge/raftstore"
)

func openT(t *testing.T, path string) *DB {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "state.db")
	}
	d, err := Open(context.Background(), Config{Path: path, CheckIntegrity: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// applier feeds ops with increasing raft indexes.
type feeder struct {
	t     *testing.T
	d     *DB
	index uint64
}

func (f *feeder) apply(ops ...Op) []Result {
	f.t.Helper()
	entries := make([]Entry, len(ops))
	for i := range ops {
		f.index++
		entries[i] = Entry{Index: f.index, Term: 1, Op: &ops[i]}
	}
	res, _, err := f.d.Apply(context.Background(), entries)
	if err != nil {
		f.t.Fatalf("Apply: %v", err)
	}
	return res
}

func TestApplyOps(t *testing.T) {
	d := openT(t, "")
	f := &feeder{t: t, d: d}
	if d.Revision() != 1 {
		t.Fatalf("empty store at revision %d, want 1", d.Revision())
	}
	tests := []struct {
		op      Op
		wantErr error
		wantKV  raftstore.KeyValue
	}{
		{Op{Kind: OpCreate, Key: "a", Value: []byte("1")}, nil, raftstore.KeyValue{Key: "a", Value: []byte("1"), CreateRevision: 2, ModRevision: 2}},
		{Op{Kind: OpCreate, Key: "a", Value: []byte("x")}, raftstore.ErrKeyExists, raftstore.KeyValue{}},
		{Op{Kind: OpUpdate, Key: "a", Value: []byte("2"), ExpectModRev: 1}, raftstore.ErrConflict, raftstore.KeyValue{}},
		{Op{Kind: OpUpdate, Key: "a", Value: []byte("2"), ExpectModRev: 2}, nil, raftstore.KeyValue{Key: "a", Value: []byte("2"), CreateRevision: 2, ModRevision: 3}},
		{Op{Kind: OpUpdate, Key: "b", Value: []byte("2")}, raftstore.ErrNotFound, raftstore.KeyValue{}},
		{Op{Kind: OpDelete, Key: "a", ExpectModRev: 2}, raftstore.ErrConflict, raftstore.KeyValue{}},
		{Op{Kind: OpDelete, Key: "a"}, nil, raftstore.KeyValue{Key: "a", Value: []byte("2"), CreateRevision: 2, ModRevision: 4}},
		{Op{Kind: OpDelete, Key: "a"}, raftstore.ErrNotFound, raftstore.KeyValue{}},
		{Op{Kind: OpCreate, Key: "a", Value: []byte("3")}, nil, raftstore.KeyValue{Key: "a", Value: []byte("3"), CreateRevision: 5, ModRevision: 5}},
		{Op{Kind: OpCompact, Revision: 99}, raftstore.ErrFutureRevision, raftstore.KeyValue{}},
	}
	for i, tc := range tests {
		r := f.apply(tc.op)[0]
		if !errors.Is(r.Err, tc.wantErr) || (tc.wantErr == nil) != (r.Err == nil) {
			t.Fatalf("step %d: err %v, want %v", i, r.Err, tc.wantErr)
		}
		if r.KV.Key != tc.wantKV.Key || !bytes.Equal(r.KV.Value, tc.wantKV.Value) ||
			r.KV.CreateRevision != tc.wantKV.CreateRevision || r.KV.ModRevision != tc.wantKV.ModRevision {
			t.Fatalf("step %d: kv %+v, want %+v", i, r.KV, tc.wantKV)
		}
	}
	if idx, _ := d.AppliedIndex(); idx != f.index {
		t.Fatalf("applied index %d, want %d", idx, f.index)
	}
}

// Entries at or below the applied index are skipped, also after a reopen.
func TestApplyIsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	d := openT(t, path)
	create := Op{Kind: OpCreate, Key: "k", Value: []byte("v")}
	update := Op{Kind: OpUpdate, Key: "k", Value: []byte("w")}
	batch := []Entry{{Index: 1, Term: 1, Op: &create}, {Index: 2, Term: 1}, {Index: 3, Term: 1, Op: &update}}
	if _, _, err := d.Apply(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d = openT(t, path)
	res, events, err := d.Apply(context.Background(), append(batch, Entry{Index: 4, Term: 2, Op: &update}))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if !res[i].Skipped {
			t.Fatalf("entry %d re-applied", i+1)
		}
	}
	if res[3].Skipped || res[3].Err != nil || res[3].KV.ModRevision != 4 || len(events) != 1 {
		t.Fatalf("new entry: %+v, %d events", res[3], len(events))
	}
	if idx, term := d.AppliedIndex(); idx != 4 || term != 2 {
		t.Fatalf("applied %d/%d, want 4/2", idx, term)
	}
}

// Compaction keeps exactly what reads and watches at or after the
// compacted revision need.
func TestCompactionRows(t *testing.T) {
	d := openT(t, "")
	f := &feeder{t: t, d: d}
	ctx := context.Background()
	f.apply(
		Op{Kind: OpCreate, Key: "a", Value: []byte("a1")}, // 2
		Op{Kind: OpUpdate, Key: "a", Value: []byte("a2")}, // 3
		Op{Kind: OpCreate, Key: "b", Value: []byte("b1")}, // 4
		Op{Kind: OpDelete, Key: "b"},                      // 5
		Op{Kind: OpCreate, Key: "c", Value: []byte("c1")}, // 6
		Op{Kind: OpUpdate, Key: "a", Value: []byte("a3")}, // 7
		Op{Kind: OpDelete, Key: "c"},                      // 8
	)
	f.apply(Op{Kind: OpCompact, Revision: 6})
	// Kept: a@3 (a's row at 6), c@6, a@7, c tombstone@8.
	if n, _ := d.HistoryRows(ctx); n != 4 {
		t.Fatalf("history rows after compact(6) = %d, want 4", n)
	}
	res, err := d.List(ctx, "", raftstore.ListOptions{Revision: 6})
	if err != nil || len(res.KVs) != 2 || string(res.KVs[0].Value) != "a2" || res.KVs[1].Key != "c" {
		t.Fatalf("List at 6: %+v %v", res.KVs, err)
	}
	evs, err := d.Events(ctx, "", 6, 100)
	if err != nil || len(evs) != 2 {
		t.Fatalf("Events after 6: %+v %v", evs, err)
	}
	if evs[0].PrevKV == nil || string(evs[0].PrevKV.Value) != "a2" ||
		evs[1].Type != raftstore.EventDelete || string(evs[1].KV.Value) != "c1" {
		t.Fatalf("Events after 6 lost their previous values: %+v %+v", evs[0], evs[1])
	}
	if _, err := d.Events(ctx, "", 5, 100); !errors.Is(err, raftstore.ErrCompacted) {
		t.Fatalf("Events after 5: %v", err)
	}
	f.apply(Op{Kind: OpCompact, Revision: 8})
	// Kept: a@7 only.
	if n, _ := d.HistoryRows(ctx); n != 1 {
		t.Fatalf("history rows after compact(8) = %d, want 1", n)
	}
	kv, err := d.Get(ctx, "a")
	if err != nil || string(kv.Value) != "a3" {
		t.Fatalf("Get a: %+v %v", kv, err)
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"", "", false}, {"a", "b", true}, {"/pods/", "/pods0", true}, {"a\xff", "b", true}, {"\xff\xff", "", false},
	}
	for _, tc := range tests {
		got, ok := prefixEnd(tc.in)
		if ok != tc.ok || string(got) != tc.want {
			t.Errorf("prefixEnd(%q) = %q %v, want %q %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// Keys with bytes above 0x7f sort and match as bytes.
func TestBinaryKeys(t *testing.T) {
	d := openT(t, "")
	f := &feeder{t: t, d: d}
	for _, k := range []string{"p\xff\x01", "p\xff", "p\x00", "q", "p\xfe"} {
		f.apply(Op{Kind: OpCreate, Key: k, Value: []byte(k)})
	}
	res, err := d.List(context.Background(), "p\xff", raftstore.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, kv := range res.KVs {
		got = append(got, kv.Key)
	}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", []string{"p\xff", "p\xff\x01"}) {
		t.Fatalf("List p\\xff = %q", got)
	}
}

func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	src := openT(t, "")
	f := &feeder{t: t, d: src}
	for i := 0; i < 50; i++ {
		f.apply(Op{Kind: OpCreate, Key: fmt.Sprintf("k%02d", i), Value: []byte("v")})
	}
	f.apply(Op{Kind: OpCompact, Revision: 20})
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	if err := src.Backup(ctx, copyPath); err != nil {
		t.Fatal(err)
	}
	// Reads still work on the reader pool after the backup.
	if _, err := src.Get(ctx, "k01"); err != nil {
		t.Fatalf("Get after backup: %v", err)
	}
	dst := openT(t, "")
	df := &feeder{t: t, d: dst}
	df.apply(Op{Kind: OpCreate, Key: "old", Value: []byte("gone after restore")})
	cp, err := os.Open(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if err := dst.Restore(ctx, cp); err != nil {
		t.Fatal(err)
	}
	if dst.Revision() != src.Revision() || dst.CompactRevision() != 20 {
		t.Fatalf("restored revision %d compact %d, want %d 20", dst.Revision(), dst.CompactRevision(), src.Revision())
	}
	if idx, _ := dst.AppliedIndex(); idx != f.index {
		t.Fatalf("restored applied index %d, want %d", idx, f.index)
	}
	if _, err := dst.Get(ctx, "old"); !errors.Is(err, raftstore.ErrNotFound) {
		t.Fatalf("old key survived restore: %v", err)
	}
	res, _ := dst.List(ctx, "k", raftstore.ListOptions{})
	if len(res.KVs) != 50 {
		t.Fatalf("restored %d keys", len(res.KVs))
	}
	// A garbage snapshot is refused and the state kept.
	if err := dst.Restore(ctx, strings.NewReader(strings.Repeat("garbage!", 1000))); err == nil {
		t.Fatal("Restore of garbage succeeded")
	}
	if res, _ := dst.List(ctx, "k", raftstore.ListOptions{}); len(res.KVs) != 50 {
		t.Fatalf("failed restore changed the state: %d keys", len(res.KVs))
	}
}

// The list query walks the (key, revision) index instead of sorting the
// table, so a page with a limit stops early.
func TestListUsesIndex(t *testing.T) {
	d := openT(t, "")
	where, args := keyRange("key", "a", "")
	rows, err := d.db.R.Query("EXPLAIN QUERY PLAN "+listQuery(where)+" LIMIT 10", append(args, 10)...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		rows.Scan(&id, &parent, &notused, &detail)
		plan = append(plan, detail)
	}
	joined := strings.Join(plan, "; ")
	if !strings.Contains(joined, "kv_log_key") || strings.Contains(joined, "TEMP B-TREE") {
		t.Fatalf("list plan does not use the key index without sorting: %s", joined)
	}
}

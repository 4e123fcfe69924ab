package storetest

import (
	"fmt"
	"testing"

	"kedge.dev/kedge/raftstore"
)

// List returns only keys under the prefix, in key order, at the current
// revision; a prefix is a byte prefix ("/pods/" does not match "/pods2").
func testListPrefix(t *testing.T, s raftstore.Store) {
	for _, k := range []string{"/pods/b", "/pods2/x", "/pods/a", "/pod", "/pods/c/d", "/q"} {
		mustCreate(t, s, k, k)
	}
	mustDelete(t, s, "/pods/b", 0)
	res, err := s.List(ctxT(t), "/pods/", raftstore.ListOptions{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if want := []string{"/pods/a", "/pods/c/d"}; !sameStrings(keys(res.KVs), want) {
		t.Fatalf("List keys %v, want %v", keys(res.KVs), want)
	}
	if res.Revision != mustRev(t, s) || res.More || res.Remaining != 0 {
		t.Fatalf("List: revision %d more %v remaining %d", res.Revision, res.More, res.Remaining)
	}
	for _, kv := range res.KVs {
		if string(kv.Value) != kv.Key || kv.CreateRevision == 0 || kv.ModRevision == 0 {
			t.Fatalf("List returned %s", fmtKV(&kv))
		}
	}
	all, err := s.List(ctxT(t), "", raftstore.ListOptions{})
	if err != nil || len(all.KVs) != 5 {
		t.Fatalf("List all: %d keys, %v; want 5", len(all.KVs), err)
	}
}

// List at an older revision sees the values and keys of then, including
// keys deleted since and without keys created since.
func testListAtRevision(t *testing.T, s raftstore.Store) {
	a := mustCreate(t, s, "/r/a", "a1")
	b := mustCreate(t, s, "/r/b", "b1")
	at := b.ModRevision
	mustUpdate(t, s, "/r/a", "a2", 0)
	mustDelete(t, s, "/r/b", 0)
	mustCreate(t, s, "/r/c", "c1")
	res, err := s.List(ctxT(t), "/r/", raftstore.ListOptions{Revision: at})
	if err != nil {
		t.Fatalf("List at %d: %v", at, err)
	}
	if res.Revision != at || len(res.KVs) != 2 {
		t.Fatalf("List at %d: revision %d keys %v", at, res.Revision, keys(res.KVs))
	}
	sameKV(t, "old /r/a", res.KVs[0], a)
	sameKV(t, "old /r/b", res.KVs[1], b)
	cur, _ := s.List(ctxT(t), "/r/", raftstore.ListOptions{})
	if want := []string{"/r/a", "/r/c"}; !sameStrings(keys(cur.KVs), want) || string(cur.KVs[0].Value) != "a2" {
		t.Fatalf("current list %v", keys(cur.KVs))
	}
}

func testListFutureRevision(t *testing.T, s raftstore.Store) {
	mustCreate(t, s, "/a", "1")
	rev := mustRev(t, s)
	_, err := s.List(ctxT(t), "/", raftstore.ListOptions{Revision: rev + 10})
	wantErr(t, "List at future revision", err, raftstore.ErrFutureRevision)
}

// Pages of Limit keys chained with StartAfter cover every key once;
// More and Remaining describe what is left.
func testListPagination(t *testing.T, s raftstore.Store) {
	const n = 10
	for i := 0; i < n; i++ {
		mustCreate(t, s, fmt.Sprintf("/p/%02d", i), "v")
	}
	mustCreate(t, s, "/pz", "outside")
	var got []string
	opts := raftstore.ListOptions{Limit: 3}
	for page := 0; ; page++ {
		res, err := s.List(ctxT(t), "/p/", opts)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		got = append(got, keys(res.KVs)...)
		left := int64(n - len(got))
		if res.More != (left > 0) || res.Remaining != left {
			t.Fatalf("page %d: more %v remaining %d, want more %v remaining %d", page, res.More, res.Remaining, left > 0, left)
		}
		if !res.More {
			break
		}
		if len(res.KVs) != 3 {
			t.Fatalf("page %d has %d keys, want 3", page, len(res.KVs))
		}
		opts.StartAfter = res.KVs[len(res.KVs)-1].Key
		opts.Revision = res.Revision
	}
	if len(got) != n {
		t.Fatalf("pages gave %d keys %v, want %d", len(got), got, n)
	}
	for i, k := range got {
		if k != fmt.Sprintf("/p/%02d", i) {
			t.Fatalf("key %d is %q", i, k)
		}
	}
	// A limit equal to the number of keys has no More.
	res, _ := s.List(ctxT(t), "/p/", raftstore.ListOptions{Limit: n})
	if res.More || res.Remaining != 0 || len(res.KVs) != n {
		t.Fatalf("Limit=n: more %v remaining %d keys %d", res.More, res.Remaining, len(res.KVs))
	}
}

// Pages read at the first page's revision ignore writes made between pages.
func testListPaginationAtRevision(t *testing.T, s raftstore.Store) {
	for i := 0; i < 6; i++ {
		mustCreate(t, s, fmt.Sprintf("/p/%d", i), "old")
	}
	first, err := s.List(ctxT(t), "/p/", raftstore.ListOptions{Limit: 2})
	if err != nil {
		t.Fatalf("first page: %v", err)
	}
	mustDelete(t, s, "/p/3", 0)
	mustUpdate(t, s, "/p/4", "new", 0)
	mustCreate(t, s, "/p/6", "new")
	rest, err := s.List(ctxT(t), "/p/", raftstore.ListOptions{Revision: first.Revision, StartAfter: first.KVs[1].Key})
	if err != nil {
		t.Fatalf("second page: %v", err)
	}
	if want := []string{"/p/2", "/p/3", "/p/4", "/p/5"}; !sameStrings(keys(rest.KVs), want) {
		t.Fatalf("second page keys %v, want %v", keys(rest.KVs), want)
	}
	for _, kv := range rest.KVs {
		if string(kv.Value) != "old" {
			t.Fatalf("second page saw a later write: %s", fmtKV(&kv))
		}
	}
	if first.Remaining != 4 {
		t.Fatalf("first page remaining %d, want 4", first.Remaining)
	}
}

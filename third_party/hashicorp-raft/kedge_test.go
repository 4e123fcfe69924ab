package raft

import (
	"errors"
	"runtime"
	"testing"
	"time"
)

// The leader's own write gates the commit index: followers that stored an
// entry before the leader did do not commit it (the leader sends entries
// while it writes them, see dispatchLogs).
func TestKedgeCommitmentWaitsForLeader(t *testing.T) {
	commitCh := make(chan struct{}, 1)
	c := newCommitment(commitCh, makeConfiguration([]string{"a", "b", "c"}), 4, "a")
	c.match("b", 10)
	c.match("c", 10)
	if got := c.getCommitIndex(); got != 0 {
		t.Fatalf("commit index %d before the leader stored anything, want 0", got)
	}
	c.match("a", 7)
	if got := c.getCommitIndex(); got != 7 {
		t.Fatalf("commit index %d, want the leader's 7", got)
	}
	c.match("a", 12)
	if got := c.getCommitIndex(); got != 10 {
		t.Fatalf("commit index %d, want the quorum's 10", got)
	}
	// A leader that is not a voter (it removed itself) does not gate.
	n := newCommitment(commitCh, makeConfiguration([]string{"b", "c", "d"}), 1, "a")
	n.match("b", 5)
	n.match("c", 5)
	if got := n.getCommitIndex(); got != 5 {
		t.Fatalf("commit index %d with a non-voting leader, want 5", got)
	}
}

type failingStore struct {
	*InmemStore
	fail bool
}

func (f *failingStore) StoreLogs(logs []*Log) error {
	if f.fail {
		return errors.New("disk full")
	}
	return f.InmemStore.StoreLogs(logs)
}

// Staged entries are readable before they are stored, leave the cache if
// the write fails, and survive a DeleteRange of older entries.
func TestKedgeLogCacheStaging(t *testing.T) {
	store := &failingStore{InmemStore: NewInmemStore()}
	c, err := NewLogCache(8, store)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StoreLogs([]*Log{{Index: 1}, {Index: 2}}); err != nil {
		t.Fatal(err)
	}
	staged := []*Log{{Index: 3, Data: []byte("x")}}
	if !c.stage(staged) {
		t.Fatal("stage refused one entry")
	}
	var l Log
	if err := c.GetLog(3, &l); err != nil || string(l.Data) != "x" {
		t.Fatalf("staged entry: %+v, %v", l, err)
	}
	if err := c.DeleteRange(1, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.GetLog(3, &l); err != nil {
		t.Fatalf("staged entry after DeleteRange of older ones: %v", err)
	}
	if err := c.GetLog(1, &l); err == nil {
		t.Fatal("deleted entry still readable")
	}
	store.fail = true
	if err := c.StoreLogs(staged); err == nil {
		t.Fatal("the failing write succeeded")
	}
	if err := c.GetLog(3, &l); err == nil {
		t.Fatal("an entry whose write failed is still readable")
	}
	if c.stage(make([]*Log, 5)) {
		t.Fatal("staged more entries than half the cache holds")
	}
}

// A leader's entries are fields of its apply futures: the cache must not
// keep a future (and its response) alive once the caller let go of it.
func TestKedgeLogCacheKeepsCopies(t *testing.T) {
	c, err := NewLogCache(8, copyingStore{NewInmemStore()})
	if err != nil {
		t.Fatal(err)
	}
	type future struct {
		log      Log
		response []byte
	}
	released := make(chan struct{})
	f := &future{log: Log{Index: 1, Term: 1, Data: []byte("x")}, response: make([]byte, 1<<20)}
	runtime.AddCleanup(f, func(ch chan struct{}) { close(ch) }, released)
	if !c.stage([]*Log{&f.log}) {
		t.Fatal("stage refused one entry")
	}
	if err := c.StoreLogs([]*Log{&f.log}); err != nil {
		t.Fatal(err)
	}
	f = nil
	deadline := time.After(5 * time.Second)
	for done := false; !done; {
		runtime.GC()
		select {
		case <-released:
			done = true
		case <-deadline:
			t.Fatal("the cache keeps the future its entry was part of alive")
		case <-time.After(10 * time.Millisecond):
		}
	}
	var l Log
	if err := c.GetLog(1, &l); err != nil || string(l.Data) != "x" || l.Term != 1 {
		t.Fatalf("cached entry: %+v, %v", l, err)
	}
}

// A batch too large to stage is cached once stored, newest entries first,
// as upstream caches every batch.
func TestKedgeLogCacheCachesLargeBatchesAfterStoring(t *testing.T) {
	store := copyingStore{NewInmemStore()}
	c, err := NewLogCache(8, store)
	if err != nil {
		t.Fatal(err)
	}
	var batch []*Log
	for i := uint64(1); i <= 10; i++ {
		batch = append(batch, &Log{Index: i, Term: 1, Data: []byte{byte(i)}})
	}
	if err := c.StoreLogs(batch); err != nil {
		t.Fatal(err)
	}
	// Only the cache can answer now.
	if err := store.DeleteRange(1, 10); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 10; i++ {
		var l Log
		err := c.GetLog(i, &l)
		if cached := i > 2; cached != (err == nil) || (cached && l.Data[0] != byte(i)) {
			t.Errorf("entry %d: %+v, %v; want it cached: %v", i, l, err, cached)
		}
	}
}

// copyingStore keeps copies of the entries, as a store that writes them
// to disk does (InmemStore keeps the pointers).
type copyingStore struct{ *InmemStore }

func (s copyingStore) StoreLogs(logs []*Log) error {
	copies := make([]*Log, len(logs))
	for i, l := range logs {
		c := *l
		copies[i] = &c
	}
	return s.InmemStore.StoreLogs(copies)
}

func makeConfiguration(voters []string) Configuration {
	var c Configuration
	for _, v := range voters {
		c.Servers = append(c.Servers, Server{Suffrage: Voter, ID: ServerID(v), Address: ServerAddress(v + "addr")})
	}
	return c
}

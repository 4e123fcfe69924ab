package raftkv

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"kedge.dev/kedge/raftstore"
)

// threeServers returns a 3-server cluster as leader, the follower that
// writes and the other follower, with the writer's forwarding connection
// to the leader already open (and its tag support learned).
func threeServers(t *testing.T) (ctx context.Context, leader, writer, other *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	leader, followers := leaderOf(t, testCluster(t, 3, nil)...)
	writer, other = followers[0], followers[1]
	if _, err := writer.Create(ctx, "/warm", nil); err != nil {
		t.Fatal(err)
	}
	return ctx, leader, writer, other
}

// dropOnce makes leader drop the next forwarded apply as f says and returns
// a channel closed once it did.
func dropOnce(leader *Store, f muxFault) <-chan struct{} {
	fired := make(chan struct{})
	var once sync.Once
	f.onFire = func() {
		once.Do(func() {
			leader.testMuxFault.Store(nil)
			close(fired)
		})
	}
	leader.testMuxFault.Store(&f)
	return fired
}

// transferTo moves the leadership from leader to to.
func transferTo(t *testing.T, leader, to *Store) {
	t.Helper()
	if err := leader.raft.LeadershipTransferToServer(raft.ServerID(to.cfg.NodeID), raft.ServerAddress(to.Addr())).Error(); err != nil {
		t.Fatalf("leadership transfer: %v", err)
	}
}

// A create whose answer is lost although the leader stays is answered from
// the writer's own apply stream: once, with the leader's result. It is the
// first request on its connection: the leader's hello said it tags.
func TestSettleAnswerLostLeaderStays(t *testing.T) {
	ctx, leader, writer, _ := threeServers(t)
	if _, mc, _ := writer.fwdMux.current(leader.Addr()); mc != nil {
		mc.c.Close()
		<-mc.done
	}
	fired := dropOnce(leader, muxFault{dropAnswer: true})
	kv, err := writer.Create(ctx, "/a", []byte("v"))
	if err != nil {
		t.Fatalf("create whose answer was lost: %v", err)
	}
	<-fired
	if kv.Key != "/a" || string(kv.Value) != "v" || kv.ModRevision == 0 {
		t.Fatalf("settled create answered %+v", kv)
	}
	got, err := leader.Get(ctx, "/a")
	if err != nil || got.ModRevision != kv.ModRevision {
		t.Fatalf("leader has %+v (%v), the writer was told revision %d", got, err, kv.ModRevision)
	}
}

// A create whose connection to the leader broke, after which the leadership
// moves, happens exactly once (a second create would answer ErrKeyExists):
// sent again when the old leader never appended it, found in the writer's
// apply stream when the old leader committed it but the answer was lost.
func TestSettleLeaderChanges(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault muxFault
	}{
		{"request lost", muxFault{dropRequest: true}},
		{"answer lost", muxFault{dropAnswer: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, leader, writer, other := threeServers(t)
			fired := dropOnce(leader, tc.fault)
			done := make(chan error, 1)
			go func() {
				_, err := writer.Create(ctx, "/b", []byte("v"))
				done <- err
			}()
			<-fired
			transferTo(t, leader, other)
			if err := <-done; err != nil {
				t.Fatalf("create lost with the old leader: %v", err)
			}
			got, err := other.Get(ctx, "/b")
			if err != nil || string(got.Value) != "v" || got.CreateRevision != got.ModRevision {
				t.Fatalf("after the settled create: %+v, %v", got, err)
			}
		})
	}
}

// A leader that does not tag entries (a server before tags, in a rolling
// upgrade) gives no way to settle: the lost answer stays an error with an
// unknown outcome, never a second send.
func TestSettleNotWithLeaderWithoutTags(t *testing.T) {
	ctx, leader, writer, _ := threeServers(t)
	old := muxFault{ignoreTags: true}
	leader.testMuxFault.Store(&old)
	if _, mc, _ := writer.fwdMux.current(leader.Addr()); mc != nil {
		mc.c.Close() // reconnect to the "old" leader
		<-mc.done
	}
	if _, err := writer.Create(ctx, "/d0", nil); err != nil {
		t.Fatal(err)
	}
	if _, mc, _ := writer.fwdMux.current(leader.Addr()); mc == nil || mc.tagged.Load() {
		t.Fatalf("connection to a leader without tags: %v, want one not tagged", mc)
	}
	dropOnce(leader, muxFault{ignoreTags: true, dropAnswer: true})
	_, err := writer.Create(ctx, "/d", nil)
	var lost *connLostError
	if !errors.As(err, &lost) || !errors.Is(err, errTransport) {
		t.Fatalf("lost answer from a leader without tags: %v, want the lost connection", err)
	}
	if _, err := writer.Create(ctx, "/d", nil); !errors.Is(err, raftstore.ErrKeyExists) {
		t.Fatalf("the lost create was not applied once: %v", err)
	}
}

// The FSM hands a tagged entry's result only to its own session's waiter,
// once.
func TestTagWaitersDeliver(t *testing.T) {
	a, err := newTagWaiters()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newTagWaiters()
	tw := a.register(0)
	defer a.forget(tw)
	res := &applyResponse{KV: raftstore.KeyValue{Key: "/x", ModRevision: 7}}
	b.deliver(tw.tag, 9, res) // another server's session
	a.deliver(append([]byte("xx"), tw.tag[2:]...), 9, res)
	if _, ok, _ := tw.applied(); ok {
		t.Fatal("delivered through another session or a bad tag")
	}
	a.deliver(tw.tag, 9, res)
	resp, ok, err := tw.applied()
	if !ok || err != nil || resp.Index != 9 || resp.KV.ModRevision != 7 {
		t.Fatalf("applied() = %+v, %v, %v", resp, ok, err)
	}
	a.deliver(tw.tag, 10, res) // a second delivery finds no waiter
	if len(a.m) != 0 {
		t.Fatalf("waiters left: %d", len(a.m))
	}
}

package raftkv

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"kedge.dev/kedge/raftstore"
	"kedge.dev/kedge/raftstore/storetest"
)

// testPeerTLS returns a mutual-TLS config for raft peers, signed by a CA
// made for the test (what cmd/kedge builds from the cluster CA).
func testPeerTLS(t testing.TB) *tls.Config {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kedge-raft"},
		DNSNames: []string{"kedge-raft"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs:      pool, ServerName: "kedge-raft", MinVersion: tls.VersionTLS13,
	}
}

// testCluster opens n servers on loopback with mutual TLS: the first
// bootstraps, the others join through the server before them (so joins
// through followers are forwarded too).
func testCluster(t testing.TB, n int, tweak func(i int, c *Config)) []*Store {
	t.Helper()
	peer := testPeerTLS(t)
	var stores []*Store
	for i := range n {
		cfg := testConfig(t, t.TempDir())
		cfg.NodeID = "node" + strconv.Itoa(i+1)
		cfg.PeerTLS = peer
		cfg.LinearizableReads = true
		cfg.HeartbeatTimeout = 200 * time.Millisecond
		cfg.ElectionTimeout = 200 * time.Millisecond
		cfg.LeaderLeaseTimeout = 100 * time.Millisecond
		cfg.JoinExisting = i > 0
		if tweak != nil {
			tweak(i, &cfg)
		}
		s := openT(t, cfg)
		if i > 0 {
			joinT(t, stores[i-1], s)
		}
		stores = append(stores, s)
	}
	return stores
}

func joinT(t testing.TB, via, s *Store) string {
	t.Helper()
	if !s.NeedsJoin() {
		t.Fatalf("%s: NeedsJoin is false on a first start with JoinExisting", s.cfg.NodeID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	suf, err := via.Join(ctx, s.cfg.NodeID, s.Addr())
	if err != nil {
		t.Fatalf("join %s: %v", s.cfg.NodeID, err)
	}
	if err := s.WaitReady(ctx); err != nil {
		t.Fatalf("%s WaitReady: %v", s.cfg.NodeID, err)
	}
	return suf
}

func leaderOf(t testing.TB, stores ...*Store) (*Store, []*Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var leader *Store
		var followers []*Store
		for _, s := range stores {
			if ok, _ := s.Leadership(); ok {
				leader = s
			} else {
				followers = append(followers, s)
			}
		}
		if leader != nil {
			return leader, followers
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no leader within 10s")
	return nil, nil
}

func TestClusterForwardingReadsWatchAndFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stores := testCluster(t, 3, nil)
	leader, followers := leaderOf(t, stores...)
	f1, f2 := followers[0], followers[1]

	// A write through a follower is forwarded; sentinel errors survive.
	kv, err := f1.Create(ctx, "/k/a", []byte("1"))
	if err != nil {
		t.Fatalf("create through follower: %v", err)
	}
	if _, err := f2.Create(ctx, "/k/a", []byte("2")); !errors.Is(err, raftstore.ErrKeyExists) {
		t.Fatalf("second create through follower: %v, want ErrKeyExists", err)
	}
	if _, err := f2.Update(ctx, "/k/a", []byte("2"), kv.ModRevision-1); !errors.Is(err, raftstore.ErrConflict) {
		t.Fatalf("stale update through follower: %v, want ErrConflict", err)
	}
	// Linearizable read on the other follower sees it at once.
	got, err := f2.Get(ctx, "/k/a")
	if err != nil || string(got.Value) != "1" {
		t.Fatalf("follower read = %q, %v", got.Value, err)
	}

	members, err := f2.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	voters, leaders := 0, 0
	for _, m := range members {
		if m.Suffrage == "voter" {
			voters++
		}
		if m.Leader {
			leaders++
			if m.ID != leader.cfg.NodeID {
				t.Errorf("members says leader %s, want %s", m.ID, leader.cfg.NodeID)
			}
		}
		if !m.Reachable {
			t.Errorf("member %s not reachable", m.ID)
		}
	}
	if len(members) != 3 || voters != 3 || leaders != 1 {
		t.Fatalf("members = %+v", members)
	}

	// A watch on a follower sees every revision once, in order, across
	// the loss of the leader.
	startRev, _ := f2.Revision(ctx)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	ch, err := f2.Watch(wctx, "/w/", startRev)
	if err != nil {
		t.Fatal(err)
	}
	const before, after = 20, 20
	for i := range before {
		if _, err := f1.Create(ctx, fmt.Sprintf("/w/%03d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	killed := time.Now()
	leader.Close()
	newLeader, _ := leaderOf(t, f1, f2)
	t.Logf("new leader %s after %v", newLeader.cfg.NodeID, time.Since(killed))
	for i := before; i < before+after; i++ {
		if _, err := f1.Create(ctx, fmt.Sprintf("/w/%03d", i), nil); err != nil {
			t.Fatalf("write %d after leader loss: %v", i, err)
		}
	}
	last := startRev
	for i := range before + after {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("watch closed after %d events", i)
			}
			if ev.KV.ModRevision <= last || ev.KV.Key != fmt.Sprintf("/w/%03d", i) {
				t.Fatalf("event %d: %s at %d after %d", i, ev.KV.Key, ev.KV.ModRevision, last)
			}
			last = ev.KV.ModRevision
		case <-time.After(10 * time.Second):
			t.Fatalf("watch: only %d events", i)
		}
	}

	// The dead leader is removed; both remaining servers agree.
	if err := f2.Remove(ctx, leader.cfg.NodeID); err != nil {
		t.Fatalf("remove dead leader: %v", err)
	}
	start := time.Now()
	if err := f2.Remove(ctx, "nobody"); !errors.Is(err, ErrUnknownServer) || time.Since(start) > 5*time.Second {
		t.Fatalf("remove unknown: %v after %v, want ErrUnknownServer at once", err, time.Since(start))
	}
	members, err = f1.Members(ctx)
	if err != nil || len(members) != 2 {
		t.Fatalf("members after remove = %+v, %v", members, err)
	}
}

func TestClusterFourthJoinsAsNonvoterAndCatchesUpBySnapshot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stores := testCluster(t, 3, func(_ int, c *Config) {
		c.TrailingLogs = 5
		c.SnapshotThreshold = 10
	})
	leader, _ := leaderOf(t, stores...)
	for i := range 50 {
		if _, err := leader.Create(ctx, fmt.Sprintf("/s/%03d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := leader.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	cfg := testConfig(t, t.TempDir())
	cfg.NodeID, cfg.PeerTLS, cfg.JoinExisting, cfg.LinearizableReads = "node4", stores[0].cfg.PeerTLS, true, true
	s4 := openT(t, cfg)
	if suf := joinT(t, stores[1], s4); suf != "nonvoter" {
		t.Fatalf("fourth server joined as %s, want nonvoter", suf)
	}
	res, err := s4.List(ctx, "/s/", raftstore.ListOptions{})
	if err != nil || len(res.KVs) != 50 {
		t.Fatalf("list on new server: %d keys, %v", len(res.KVs), err)
	}
	if n, _ := strconv.Atoi(s4.raft.Stats()["last_snapshot_index"]); n == 0 {
		t.Errorf("new server has no snapshot: it was not caught up by InstallSnapshot")
	}
	// Removing a voter promotes the nonvoter.
	_, followers := leaderOf(t, stores...)
	victim := followers[0]
	victim.Close()
	if err := leader.Remove(ctx, victim.cfg.NodeID); err != nil {
		t.Fatal(err)
	}
	cf := leader.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		t.Fatal(err)
	}
	for _, srv := range cf.Configuration().Servers {
		if srv.ID == "node4" && srv.Suffrage != raft.Voter {
			t.Errorf("node4 is %v after a voter was removed, want voter", srv.Suffrage)
		}
	}
}

// The raft port refuses peers without a certificate of the cluster CA.
func TestForwardingNeedsClientCertificate(t *testing.T) {
	stores := testCluster(t, 1, nil)
	for _, cfg := range []*tls.Config{
		nil,                        // plain TCP
		{InsecureSkipVerify: true}, // TLS without a client certificate
		func() *tls.Config { c := testPeerTLS(t); c.InsecureSkipVerify = true; return c }(), // other CA
	} {
		c, err := net.DialTimeout("tcp", stores[0].Addr(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var conn net.Conn = c
		if cfg != nil {
			conn = tls.Client(c, cfg)
		}
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		conn.Write([]byte{connForward})
		json.NewEncoder(conn).Encode(fwdRequest{Kind: "apply", Cmd: []byte{cmdCreate, cmdVersion1, 1, 'x', 0}})
		var resp fwdResponse
		if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&resp); err == nil {
			t.Errorf("unauthenticated peer (tls %v) got an answer: %+v", cfg != nil, resp)
		}
		conn.Close()
	}
	if _, err := stores[0].Get(context.Background(), "x"); !errors.Is(err, raftstore.ErrNotFound) {
		t.Fatalf("unauthenticated write reached the store: %v", err)
	}
}

// The contract holds on a follower of a three-server cluster: writes are
// forwarded, reads go through a read index, watches follow local applies.
func TestConformanceThreeServersOnFollower(t *testing.T) {
	storetest.Run(t, func(t *testing.T) raftstore.Store {
		stores := testCluster(t, 3, nil)
		_, followers := leaderOf(t, stores...)
		return followers[0]
	})
}

// A planned stop hands leadership to another voter; a server that leaves
// is no longer a member and the others keep a quorum of the rest.
func TestClusterHandoffAndLeave(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stores := testCluster(t, 3, nil)
	leader, _ := leaderOf(t, stores...)
	if err := leader.Handoff(ctx); err != nil {
		t.Fatalf("Handoff: %v", err)
	}
	// Leadership follows raft's notification, a moment after the handoff.
	deadline := time.Now().Add(5 * time.Second)
	for ok, _ := leader.Leadership(); ok; ok, _ = leader.Leadership() {
		if time.Now().After(deadline) {
			t.Fatal("still leader 5s after Handoff")
		}
		time.Sleep(5 * time.Millisecond)
	}
	next, others := leaderOf(t, stores...)
	if next == leader {
		t.Fatal("leadership did not move")
	}
	var leaver *Store
	for _, s := range others {
		if s != leader {
			leaver = s
		}
	}
	if err := leaver.Leave(ctx); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	leaver.Close()
	members, err := next.Members(ctx)
	if err != nil || len(members) != 2 {
		t.Fatalf("members after leave = %+v, %v", members, err)
	}
	if _, err := leader.Create(ctx, "/after-leave", nil); err != nil {
		t.Fatalf("write after leave: %v", err)
	}
}

// leaderAndFollower starts a cluster of two and returns a context for the
// test's calls with its leader and its follower.
func leaderAndFollower(t *testing.T) (context.Context, *Store, *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	leader, followers := leaderOf(t, testCluster(t, 2, nil)...)
	return ctx, leader, followers[0]
}

// A follower keeps one multiplexed forwarding connection to the leader;
// when the leader drops it (a restart), the next write dials a new one.
func TestForwardMuxReconnects(t *testing.T) {
	ctx, leader, f := leaderAndFollower(t)
	if _, err := f.Create(ctx, "/a", nil); err != nil {
		t.Fatal(err)
	}
	_, first, _ := f.fwdMux.current(leader.Addr())
	if first == nil {
		t.Fatal("no multiplexed connection after a forwarded write")
	}
	first.c.Close() // as a restart of the leader would
	<-first.done
	if _, err := f.Update(ctx, "/a", []byte("x"), 0); err != nil {
		t.Fatalf("write after the connection ended: %v", err)
	}
	if _, second, _ := f.fwdMux.current(leader.Addr()); second == nil || second == first {
		t.Fatal("the write did not dial a new connection")
	}
}

// Concurrent forwarded writes share the one connection and each gets its
// own answer.
func TestForwardMuxConcurrentWrites(t *testing.T) {
	ctx, _, f := leaderAndFollower(t)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("/k/%d", i)
			kv, err := f.Create(ctx, key, []byte(key))
			if err == nil && (kv.Key != key || string(kv.Value) != key) {
				err = fmt.Errorf("create %s answered with %s=%q", key, kv.Key, kv.Value)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// A conflict is the caller's own answer, not its neighbour's.
	if _, err := f.Update(ctx, "/k/1", nil, 1); !errors.Is(err, raftstore.ErrConflict) {
		t.Fatalf("update with a stale revision: %v, want ErrConflict", err)
	}
}

// A follower speaks the one-request-per-connection protocol to a leader
// from before multiplexed forwarding (a rolling upgrade), and drops a
// pooled connection the leader closed.
func TestForwardToServerBeforeMux(t *testing.T) {
	ctx, leader, f := leaderAndFollower(t)
	leader.mux.beforeMux.Store(true)
	if _, mc, _ := f.fwdMux.current(leader.Addr()); mc != nil {
		mc.c.Close() // made while the follower caught up at start
		<-mc.done
	}
	if _, err := f.Create(ctx, "/a", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.fwdMux.current(leader.Addr()); !errors.Is(err, errPeerNoMux) {
		t.Fatalf("peer state after a write to an old leader: %v, want errPeerNoMux", err)
	}
	pooled := f.fwd.get(leader.Addr())
	if pooled == nil {
		t.Fatal("no pooled connection after a forwarded write")
	}
	if !pooled.alive() {
		t.Fatal("a fresh pooled connection reads as dead")
	}
	f.fwd.put(leader.Addr(), pooled)
	// Close the server side of every forwarding connection, as a restart
	// of the leader would.
	leader.cancel()
	time.Sleep(50 * time.Millisecond)
	if got := f.fwd.get(leader.Addr()); got != nil {
		t.Fatal("a connection closed by the server was handed out")
	}
}

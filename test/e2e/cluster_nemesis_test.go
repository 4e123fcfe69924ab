package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"kedge.dev/kedge/raftstore/linearize"
)

// The multi-server store checks: linearizability of the Kubernetes API of a
// three-server cluster under a nemesis, durability of acknowledged writes
// across a SIGKILL of every server, and recovery from a lost quorum.

// newCluster3 starts three servers, the second and third joining through
// the one before, and stops them together at the end of the test.
func newCluster3(t *testing.T) []*server {
	t.Helper()
	s1 := newClusterServer(t, nil)
	s2 := newClusterServer(t, s1)
	s3 := newClusterServer(t, s2)
	all := []*server{s1, s2, s3}
	stopTogether(t, all...)
	return all
}

// startQuiet starts the server's process again without failing the test
// (the nemesis runs outside the test goroutine) and waits until its API
// answers a read that goes through raft.
func (s *server) startQuiet(ctx context.Context, probeKey string, timeout time.Duration) error {
	s.logMu.Lock()
	from := s.log.Len()
	s.logMu.Unlock()
	s.cmd = exec.Command(s.bin, s.args...)
	w := lockedWriter{&s.logMu, &s.log}
	s.cmd.Stdout, s.cmd.Stderr = w, w
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.nodeName(), err)
	}
	done := make(chan struct{})
	s.done = done
	go func() { s.cmd.Wait(); close(done) }()
	c := newNSClient(s)
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-done:
			s.logMu.Lock()
			out := s.log.String()[from:]
			s.logMu.Unlock()
			if len(out) > 4000 {
				out = out[len(out)-4000:]
			}
			return fmt.Errorf("%s exited while starting (%v); its log:\n%s", s.nodeName(), s.cmd.ProcessState, out)
		default:
		}
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := c.get(rctx, probeKey)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not serving within %v: %w", s.nodeName(), timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// leaderName asks a live server which member leads, without failing the test.
func leaderName(via *server) (string, error) {
	out, err := exec.Command(via.bin, "server", "members", "--data-dir", via.dataDir).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("kedge server members on %s: %w: %s", via.nodeName(), err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, line := range lines[1:] {
		if f := strings.Fields(line); len(f) >= 5 && f[3] == "true" {
			return f[0], nil
		}
	}
	return "", fmt.Errorf("no leader in %q", out)
}

// partition drops every packet to or from the server's raft listener on
// loopback (an nftables table of its own); heal removes the table. It is
// one-way enough to cut the member off: the leader's appends and its
// answers to them are lost.
type partition struct {
	table string
}

func partitionServer(s *server) (*partition, error) {
	host, port, err := net.SplitHostPort(flagValue(s.args, "--raft-listen"))
	if err != nil {
		return nil, fmt.Errorf("raft address of %s: %w", s.nodeName(), err)
	}
	p := &partition{table: fmt.Sprintf("kedgetest%d", os.Getpid())}
	script := fmt.Sprintf(`table inet %[1]s {
	chain out {
		type filter hook output priority -10; policy accept;
		ip daddr %[2]s tcp dport %[3]s drop
		ip saddr %[2]s tcp sport %[3]s drop
	}
	chain in {
		type filter hook input priority -10; policy accept;
		ip daddr %[2]s tcp dport %[3]s drop
		ip saddr %[2]s tcp sport %[3]s drop
	}
}
`, p.table, host, port)
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		p.heal()
		return nil, fmt.Errorf("nft partition of %s: %w: %s", s.nodeName(), err, out)
	}
	return p, nil
}

func (p *partition) heal() {
	exec.Command("nft", "delete", "table", "inet", p.table).Run()
}

// Concurrent reads, writes and compare-and-swaps by clients spread over a
// three-server cluster, while a nemesis SIGKILLs and restarts the leader
// or a random member (one at a time, so a quorum remains), form a
// linearizable history. The long run (KEDGE_LONG=1) also partitions a
// member's raft port with nftables.
func TestClusterLinearizableUnderNemesis(t *testing.T) {
	duration := 35 * time.Second
	if longRun() {
		duration = 20 * time.Minute
	}
	if d, err := time.ParseDuration(os.Getenv("KEDGE_NEMESIS_DURATION")); err == nil {
		duration = d // to try the long nemesis for a short while
	}
	all := newCluster3(t)
	// The history is recorded and checked in segments of at most 45 s,
	// each on fresh keys: an operation whose outcome is unknown (its
	// server was killed) stays concurrent with everything after it on its
	// key, and over 20 minutes that made the check's search (and memory:
	// 19 GB) explode. A late effect of such an operation only touches
	// its own segment's keys.
	segLen := min(duration, 45*time.Second)
	segKeys := func(seg int) []string {
		return []string{fmt.Sprintf("lin-%d-0", seg), fmt.Sprintf("lin-%d-1", seg), fmt.Sprintf("lin-%d-2", seg), fmt.Sprintf("lin-%d-3", seg), fmt.Sprintf("lin-%d-4", seg)}
	}
	createKeys := func(ctx context.Context, keys []string) error {
		for _, k := range keys {
			for attempt := 0; ; attempt++ {
				err := newNSClient(all[attempt%len(all)]).create(ctx, k, "")
				if err == nil || strings.Contains(err.Error(), "AlreadyExists") || strings.Contains(err.Error(), "already exists") {
					break
				}
				if ctx.Err() != nil || attempt > 100 {
					return fmt.Errorf("create key %s: %w", k, err)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		return nil
	}
	keys := segKeys(0)
	if err := createKeys(context.Background(), keys); err != nil {
		t.Fatal(err)
	}
	probeKey := keys[0] // a key that exists all along, for restarts
	var clients []linearize.Client
	for i := range 6 {
		clients = append(clients, newNSClient(all[i%len(all)]))
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type tally struct {
		kills, leaderKills, partitions int
		err                            error
	}
	nemesisDone := make(chan tally, 1)
	var partMu sync.Mutex
	var part *partition
	t.Cleanup(func() { // heal even if the test fails midway
		partMu.Lock()
		defer partMu.Unlock()
		if part != nil {
			part.heal()
		}
	})
	go func() {
		var n tally
		defer func() { nemesisDone <- n }()
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
		for round := 0; ; round++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(3 * time.Second):
			}
			if longRun() && round%4 == 3 {
				victim := all[rng.IntN(len(all))]
				p, err := partitionServer(victim)
				if err != nil {
					n.err = err
					return
				}
				partMu.Lock()
				part = p
				partMu.Unlock()
				n.partitions++
				select {
				case <-ctx.Done():
				case <-time.After(5 * time.Second):
				}
				partMu.Lock()
				part.heal()
				part = nil
				partMu.Unlock()
				continue
			}
			victim := all[rng.IntN(len(all))]
			if round%2 == 0 { // every other round, the leader
				name, err := leaderName(all[(round/2)%len(all)])
				if err == nil {
					for _, s := range all {
						if s.nodeName() == name {
							victim = s
						}
					}
					n.leaderKills++
				}
			}
			victim.cmd.Process.Signal(syscall.SIGKILL)
			<-victim.done
			n.kills++
			time.Sleep(time.Second)
			// A fresh context: the restart must finish even when the
			// recording has just ended, so the cluster stops whole.
			sctx, scancel := context.WithTimeout(context.Background(), 90*time.Second)
			err := victim.startQuiet(sctx, probeKey, 90*time.Second)
			scancel()
			if err != nil {
				n.err = err
				return
			}
		}
	}()
	start := time.Now()
	var ops, completed, unknown, dropped, segments int
	checkTime := time.Duration(0)
	for seg := 0; time.Since(start) < duration; seg++ {
		if seg > 0 {
			keys = segKeys(seg)
			if err := createKeys(ctx, keys); err != nil {
				t.Fatal(err)
			}
		}
		d := min(segLen, duration-time.Since(start))
		if d < 5*time.Second {
			break
		}
		h := linearize.Record(ctx, linearize.Config{Keys: keys, Duration: d, OpTimeout: 10 * time.Second, Seed: uint64(time.Now().UnixNano())}, clients)
		checkStart := time.Now()
		res := linearize.Check(h, 5*time.Minute)
		checkTime += time.Since(checkStart)
		segments++
		ops, completed, unknown, dropped = ops+res.Ops, completed+h.Completed, unknown+res.UnknownOps, dropped+h.Dropped
		if res.Verdict != porcupine.Ok {
			viz := filepath.Join(os.TempDir(), fmt.Sprintf("kedge-cluster-linearizability-%d.html", time.Now().Unix()))
			if err := linearize.Visualize(res, viz); err == nil {
				t.Logf("visualization: %s", viz)
			}
			t.Fatalf("segment %d (keys %v, %d operations): history is %s", seg, keys, res.Ops, res.Verdict)
		}
	}
	cancel()
	n := <-nemesisDone
	recorded := time.Since(start)
	if n.err != nil {
		t.Fatalf("nemesis: %v", n.err)
	}
	t.Logf("3 servers, %v recorded in %d segments: %d kills (%d of the leader), %d partitions; %d operations checked (%d completed, %d with unknown outcome, %d dropped) in %v: Ok",
		recorded.Round(time.Second), segments, n.kills, n.leaderKills, n.partitions, ops, completed, unknown, dropped,
		checkTime.Round(time.Millisecond))
	if n.kills == 0 || completed < 100 {
		t.Fatalf("the run did not exercise the cluster: %d kills, %d completed operations", n.kills, completed)
	}
}

// Every create acknowledged by any of three servers before a SIGKILL of all
// of them is present after they all restart.
func TestClusterDurabilityAcrossSIGKILLOfAll(t *testing.T) {
	all := newCluster3(t)
	rounds := 1
	if longRun() {
		rounds = 5
	}
	var acked []string
	for round := range rounds {
		ctx, cancel := context.WithCancel(context.Background())
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range 6 {
			c := newNSClient(all[w%len(all)])
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					name := fmt.Sprintf("dur-%d-%d-%d", round, w, i)
					if err := c.create(ctx, name, "v"); err != nil {
						return // its server is gone
					}
					mu.Lock()
					acked = append(acked, name)
					mu.Unlock()
				}
			}()
		}
		time.Sleep(4 * time.Second)
		for _, s := range all { // as close to together as signals go
			s.cmd.Process.Signal(syscall.SIGKILL)
		}
		for _, s := range all {
			<-s.done
		}
		cancel()
		wg.Wait()
		var swg sync.WaitGroup
		errs := make([]error, len(all))
		for i, s := range all {
			swg.Add(1)
			go func() {
				defer swg.Done()
				sctx, scancel := context.WithTimeout(context.Background(), 120*time.Second)
				defer scancel()
				errs[i] = s.startQuiet(sctx, "default", 120*time.Second)
			}()
		}
		swg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: restart after SIGKILL of all: %v", round, err)
		}
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n == 0 {
			t.Fatalf("round %d: no write was acknowledged", round)
		}
		for _, s := range all { // each server answers with all of them
			list := s.kubectl("1.32", "get", "namespaces", "-o", "name")
			missing := 0
			for _, name := range acked {
				if !strings.Contains(list, "namespace/"+name+"\n") {
					missing++
					if missing <= 5 {
						t.Errorf("round %d: acknowledged namespace %s missing on %s after SIGKILL of all", round, name, s.nodeName())
					}
				}
			}
			t.Logf("round %d: %s has %d of %d acknowledged creates (%d missing)", round, s.nodeName(), n-missing, n, missing)
		}
	}
}

// With two of three servers lost for good, `kedge server --reset-cluster`
// on the survivor makes it a single-voter cluster that keeps every object
// and accepts writes.
func TestClusterLostQuorumReset(t *testing.T) {
	all := newCluster3(t)
	ctx := context.Background()
	c := newNSClient(all[1])
	for i := range 10 {
		if err := c.create(ctx, fmt.Sprintf("kept-%d", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	survivor := all[2]
	cols := "custom-columns=NAME:.metadata.name,RV:.metadata.resourceVersion,V:.metadata.annotations.kedge\\.test/value"
	before := survivor.kubectl("1.32", "get", "namespaces", "-o", cols, "--no-headers")
	all[0].sigkill()
	all[1].sigkill()
	// Without a quorum the survivor cannot commit: a write fails.
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	err := newNSClient(survivor).create(wctx, "no-quorum", "x")
	wcancel()
	if err == nil {
		t.Fatal("a write succeeded on one server of three")
	}
	survivor.sigkill() // SIGTERM could wait on the lost quorum
	plain := survivor.args
	survivor.args = append(append([]string{}, plain...), "--reset-cluster")
	started := time.Now()
	survivor.start()
	t.Logf("survivor serving %v after the start with --reset-cluster", time.Since(started).Round(time.Millisecond))
	if !strings.Contains(survivor.logs(), "raft cluster reset") {
		t.Errorf("no reset logged:\n%s", survivor.logs())
	}
	ms := survivor.members()
	if len(ms) != 1 || ms[0].id != survivor.nodeName() || ms[0].suffrage != "voter" || ms[0].leader != "true" {
		t.Fatalf("members after the reset = %+v, want the survivor alone, leading", ms)
	}
	after := survivor.kubectl("1.32", "get", "namespaces", "-o", cols, "--no-headers")
	for _, l := range strings.Split(strings.TrimSpace(before), "\n") {
		if !strings.Contains(after, l) {
			t.Errorf("after --reset-cluster, %q is missing:\n%s", l, after)
		}
	}
	sc := newNSClient(survivor)
	if err := sc.create(ctx, "after-reset", "x"); err != nil {
		t.Fatalf("write after the reset: %v", err)
	}
	// Restarted without the flag (as its unit file would), it stays a
	// single-voter cluster.
	survivor.args = plain
	survivor.restart()
	if _, err := sc.get(ctx, "after-reset"); err != nil {
		t.Fatal(err)
	}
	if ms := survivor.members(); len(ms) != 1 {
		t.Fatalf("members after a plain restart = %+v", ms)
	}
}

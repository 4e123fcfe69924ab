package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kedge.dev/kedge/raftstore/raftkv"
)

// clusterTarget is a 3-member kvTarget whose leader can be killed. procs
// of the kvTarget are the members' processes, in member order, and follow
// restarts.
type clusterTarget struct {
	*kvTarget
	// leader returns the index of the current leader, waiting for one.
	leader func() int
	// kill sends SIGKILL to member i and waits until it exited.
	kill func(i int)
	// restart starts member i again on its data and waits until it is
	// back in the cluster and takes writes.
	restart func(i int)
	// via returns a client that sends every request to member i; it is
	// safe for concurrent use.
	via func(i int) kvClient
}

const (
	clusterMembers = 3
	// failoverLoadClients write through the survivors while the leader
	// is killed.
	failoverLoadClients = 4
	// failoverProbeEvery is how often a new probe write starts after the
	// kill: the resolution of the failover time.
	failoverProbeEvery = 50 * time.Millisecond
)

// BenchmarkStoreCluster compares a 3-member kedge cluster with a 3-member
// etcd cluster on one machine, fsync on: the cells of BenchmarkStore (1,
// 16 and 64 clients spread over all members, puts and compare-and-swaps of
// 1 KiB values) with the RSS of each member and the bytes all members
// write, then the leader failover time after SIGKILL under a steady write
// load, a few rounds each. Both clusters run for the whole benchmark and
// the cells alternate between them. Figures are logged with kedge/etcd
// ratios.
func BenchmarkStoreCluster(b *testing.B) {
	if _, err := exec.LookPath("etcd"); err != nil {
		b.Fatalf("etcd is needed as the peer (Debian etcd-server; make bench installs it): %v", err)
	}
	if os.Getenv("ETCD_CLIENT_DEBUG") == "" {
		// clientv3 logs a warning for each request cancelled when a
		// failover round ends.
		b.Setenv("ETCD_CLIENT_DEBUG", "error")
	}
	seconds := benchSeconds()
	// KEDGE_BENCH_BASELINE_BIN=path adds a third cluster, "kedge-base", of
	// another kedge build, so that a change is measured against the build
	// before it in the same run (cells alternate, as with etcd); run-to-run
	// noise on a shared machine is larger than most changes.
	baselineBin := os.Getenv("KEDGE_BENCH_BASELINE_BIN")
	rounds := 5
	if v, err := strconv.Atoi(os.Getenv("KEDGE_BENCH_FAILOVER_ROUNDS")); err == nil {
		rounds = v
	}
	b.Logf("command: make bench (go test -run '^$' -bench StoreCluster -benchtime 1x ./test/e2e); %.0fs per cell (KEDGE_BENCH_SECONDS), %d failover rounds (KEDGE_BENCH_FAILOVER_ROUNDS)",
		seconds.Seconds(), rounds)
	// The machine is shared: the load average says how quiet it was.
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average at start: %s (%d CPUs)", strings.TrimSpace(string(la)), runtime.NumCPU())
	}
	// KEDGE_BENCH_TARGETS (etcd-3, kedge-3, kedge-base) narrows the run. Both
	// clusters run at once and the cells alternate between them (see
	// runStoreCells); each failover runs with the other cluster idle.
	var targets []*clusterTarget
	for _, t := range []struct {
		name  string
		start func(testing.TB) *clusterTarget
	}{{"etcd-3", startEtcdCluster}, {"kedge-3", func(tb testing.TB) *clusterTarget {
		// Installed as on a node, as Debian's etcd is (installBinary).
		return startKedgeCluster(tb, "kedge-3", installBinary(tb, binPath(tb)))
	}}, {"kedge-base", func(tb testing.TB) *clusterTarget {
		return startKedgeCluster(tb, "kedge-base", installBinary(tb, baselineBin))
	}}} {
		if t.name == "kedge-base" && baselineBin == "" {
			continue
		}
		if benchTargetWanted(t.name) {
			ct := t.start(b)
			b.Logf("%s: %s", ct.name, ct.measures)
			targets = append(targets, ct)
		}
	}
	var kvs []*kvTarget
	for _, ct := range targets {
		kvs = append(kvs, ct.kvTarget)
	}
	cells := runStoreCells(b, kvs, seconds)
	sustained := runSustained(b, kvs)
	failovers := map[string][]time.Duration{}
	for _, ct := range targets {
		if rounds > 0 {
			failovers[ct.name] = measureFailover(b, ct, rounds)
		}
	}
	for _, ct := range targets {
		ct.close()
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average after the cells and failovers: %s", strings.TrimSpace(string(la)))
	}
	logStoreRatios(b, cells, []string{"kedge-3"}, "etcd-3")
	logSustainedRatio(b, sustained, "kedge-3", "etcd-3")
	if baselineBin != "" {
		logStoreRatios(b, cells, []string{"kedge-3"}, "kedge-base")
		logSustainedRatio(b, sustained, "kedge-3", "kedge-base")
	}

	b.Logf("leader failover: SIGKILL of the leader while %d clients write through the two other members; time from the kill until the first write started after it succeeds through a survivor (a new write every %v)",
		failoverLoadClients, failoverProbeEvery)
	for _, name := range []string{"etcd-3", "kedge-3"} {
		if d := failovers[name]; len(d) > 0 {
			b.Logf("%-8s failover over %d rounds: median %v, max %v (all: %v)", name, len(d), median(d).Round(time.Millisecond), slices.Max(d).Round(time.Millisecond), roundAll(d))
			b.ReportMetric(float64(median(d).Milliseconds()), name+"-failover-median-ms")
		}
	}
	if k, e := failovers["kedge-3"], failovers["etcd-3"]; len(k) > 0 && len(e) > 0 {
		b.Logf("failover kedge / etcd: median %.2fx, max %.2fx", ratio(median(k), median(e)), ratio(slices.Max(k), slices.Max(e)))
	}
}

// runSustained runs put with sustainedClients clients against each target
// in turn for KEDGE_BENCH_SUSTAIN_SECONDS (default 60; 0 skips it): the
// cells are too short for a store's memory to level off (etcd keeps the
// raft log since its last snapshot in memory and grows for its first
// 100,000 entries), so this measures RSS under sustained load, at the end
// and at its peak (sampled every 500 ms). Each target runs alone.
func runSustained(b *testing.B, tgs []*kvTarget) map[string]benchResult {
	d := 60 * time.Second
	if v, err := strconv.ParseFloat(os.Getenv("KEDGE_BENCH_SUSTAIN_SECONDS"), 64); err == nil {
		d = time.Duration(v * float64(time.Second))
	}
	out := map[string]benchResult{}
	if d <= 0 {
		return out
	}
	keys, all := benchKeys("sustain", sustainedClients)
	for _, tg := range tgs {
		if err := tg.prepare(context.Background(), all); err != nil {
			b.Fatalf("%s: prepare keys: %v", tg.name, err)
		}
		r := runCell(b, tg, "put", keys, d)
		b.Logf("%-14s sustained put %d clients for %v: %8.0f ops/s  p50 %7.2fms  p99 %7.2fms  RSS at the end %6.1f MiB (members %s) of which anonymous %.1f MiB, peak %6.1f MiB  CPU %.2f ms/op  (%d ops, %d errors)",
			tg.name, sustainedClients, d, r.opsPerSec, ms(r.p50), ms(r.p99), r.rssMiB, joinMiB(r.rssEach), r.anonMiB, r.rssPeakMiB, r.cpuMsPerOp, r.ops, r.errors)
		out[tg.name] = r
	}
	return out
}

// sustainedClients is the client count of the sustained run: the one the
// targets are set for.
const sustainedClients = 16

func logSustainedRatio(b *testing.B, res map[string]benchResult, name, peer string) {
	k, okK := res[name]
	e, okE := res[peer]
	if !okK || !okE || e.opsPerSec == 0 {
		return
	}
	b.Logf("%-14s sustained put %d clients, kedge / %s: throughput %.2fx  RSS at the end %.2fx  RSS peak %.2fx  RSS anonymous at the end %.2fx  CPU/op %.2fx",
		name, sustainedClients, peer, k.opsPerSec/e.opsPerSec, k.rssMiB/e.rssMiB, k.rssPeakMiB/e.rssPeakMiB, k.anonMiB/e.anonMiB, k.cpuMsPerOp/e.cpuMsPerOp)
	b.ReportMetric(k.rssPeakMiB/e.rssPeakMiB, name+"-sustained-rss-peak-x-"+peer)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func roundAll(d []time.Duration) []time.Duration {
	r := make([]time.Duration, len(d))
	for i, x := range d {
		r[i] = x.Round(time.Millisecond)
	}
	return r
}

// measureFailover kills the leader of ct rounds times while
// failoverLoadClients put through the two other members, and returns for
// each round the time from the kill until a write started after it
// succeeded through a survivor. The killed member is restarted between
// rounds, so every round starts with three healthy members.
func measureFailover(b *testing.B, ct *clusterTarget, rounds int) []time.Duration {
	var loadKeys [][]string
	var probeKeys, all []string
	for w := 0; w < failoverLoadClients; w++ {
		var ks []string
		for j := 0; j < benchKeysPerCli; j++ {
			ks = append(ks, fmt.Sprintf("failover-load-%d-%d", w, j))
		}
		loadKeys = append(loadKeys, ks)
		all = append(all, ks...)
	}
	// One key per probe write in flight, so probes never race each other.
	for j := 0; j < 64; j++ {
		probeKeys = append(probeKeys, fmt.Sprintf("failover-probe-%d", j))
	}
	all = append(all, probeKeys...)
	if err := ct.prepare(context.Background(), all); err != nil {
		b.Fatalf("%s: prepare failover keys: %v", ct.name, err)
	}
	var took []time.Duration
	for r := 0; r < rounds; r++ {
		leader := ct.leader()
		var survivors []int
		for i := 0; i < clusterMembers; i++ {
			if i != leader {
				survivors = append(survivors, i)
			}
		}
		ctx, stopLoad := context.WithCancel(context.Background())
		var acks, errs atomic.Int64
		var wg sync.WaitGroup
		for w, ks := range loadKeys {
			c := ct.via(survivors[w%len(survivors)])
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					if err := putOnce(ctx, c, ks[i%len(ks)], i); err != nil {
						if ctx.Err() == nil {
							errs.Add(1)
						}
						time.Sleep(10 * time.Millisecond)
						continue
					}
					acks.Add(1)
				}
			}()
		}
		time.Sleep(time.Second)
		before := acks.Load()
		killed := time.Now()
		ct.kill(leader)
		d, err := probeWrites(ct, survivors, killed, probeKeys)
		if err != nil {
			b.Fatalf("%s round %d: no write succeeded after the leader (member %d) was killed: %v", ct.name, r+1, leader, err)
		}
		// A moment of load under the new leader, to see it carries on.
		time.Sleep(300 * time.Millisecond)
		stopLoad()
		wg.Wait()
		took = append(took, d)
		b.Logf("%-8s round %d: killed member %d (leader); first write through a survivor after %v; load: %d writes before the kill, %d in all, %d errors",
			ct.name, r+1, leader, d.Round(time.Millisecond), before, acks.Load(), errs.Load())
		ct.restart(leader)
	}
	return took
}

// putOnce writes one new value of key through c, giving up after 10 s.
func putOnce(ctx context.Context, c kvClient, key string, seq int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	prefix := strconv.Itoa(seq) + "-"
	return c.put(ctx, key, []byte(prefix+strings.Repeat("x", benchValueSize-len(prefix))))
}

// probeWrites starts a put through the survivors (alternating) every
// failoverProbeEvery until one succeeds and returns when it did, counted
// from since. Starting new writes instead of retrying one keeps a request
// sent to a member that has not yet noticed the dead leader (and waits for
// its timeout) from hiding a recovery.
func probeWrites(ct *clusterTarget, survivors []int, since time.Time, keys []string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	clients := make([]kvClient, len(survivors))
	for i, m := range survivors {
		clients[i] = ct.via(m)
	}
	won := make(chan time.Duration, 1)
	var lastErr atomic.Value
	tick := time.NewTicker(failoverProbeEvery)
	defer tick.Stop()
	for n := 0; ; n++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := putOnce(ctx, clients[n%len(clients)], keys[n%len(keys)], n); err != nil {
				lastErr.Store(err)
				return
			}
			select {
			case won <- time.Since(since):
			default:
			}
		}()
		select {
		case d := <-won:
			return d, nil
		case <-ctx.Done():
			return 0, fmt.Errorf("%w (last error: %v)", ctx.Err(), lastErr.Load())
		case <-tick.C:
		}
	}
}

func snapshotCountNote() string {
	if n := os.Getenv("KEDGE_BENCH_ETCD_SNAPSHOT_COUNT"); n != "" {
		return " except --snapshot-count " + n
	}
	return ""
}

// etcdMember is one process of the etcd cluster.
type etcdMember struct {
	clientURL string
	args      []string
	cmd       *exec.Cmd
	done      chan struct{}
}

func (m *etcdMember) start(tb testing.TB) {
	tb.Helper()
	m.cmd = exec.Command("etcd", m.args...)
	m.cmd.Stdout, m.cmd.Stderr = io.Discard, io.Discard
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		tb.Fatalf("start etcd: %v", err)
	}
	m.done = make(chan struct{})
	go func() { m.cmd.Wait(); close(m.done) }()
}

func (m *etcdMember) kill() {
	m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
}

// startEtcdCluster runs Debian's etcd as three members on 127.0.0.x
// (fsync on, defaults: heartbeat 100 ms, election timeout 1 s).
// KEDGE_BENCH_ETCD_SNAPSHOT_COUNT sets --snapshot-count: Debian's etcd 3.4
// keeps 100,000 raft entries in memory between snapshots, etcd 3.6 10,000,
// which bounds its memory under sustained load much lower.
func startEtcdCluster(tb testing.TB) *clusterTarget {
	members := make([]*etcdMember, clusterMembers)
	var peers []string
	for i := range members {
		ip := fmt.Sprintf("127.0.0.%d", 101+i)
		purl := fmt.Sprintf("http://%s:%d", ip, freePort(tb))
		members[i] = &etcdMember{clientURL: fmt.Sprintf("http://%s:%d", ip, freePort(tb))}
		members[i].args = []string{"--name", fmt.Sprintf("m%d", i), "--data-dir", filepath.Join(tb.TempDir(), "etcd"),
			"--listen-client-urls", members[i].clientURL, "--advertise-client-urls", members[i].clientURL,
			"--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
			"--initial-cluster-state", "new", "--initial-cluster-token", fmt.Sprintf("bench-%d", os.Getpid()),
			"--log-level", "warn"}
		peers = append(peers, fmt.Sprintf("m%d=%s", i, purl))
	}
	var endpoints []string
	for _, m := range members {
		m.args = append(m.args, "--initial-cluster", strings.Join(peers, ","))
		if n := os.Getenv("KEDGE_BENCH_ETCD_SNAPSHOT_COUNT"); n != "" {
			m.args = append(m.args, "--snapshot-count", n)
		}
		m.start(tb)
		endpoints = append(endpoints, m.clientURL)
	}
	newClient := func(eps ...string) *clientv3.Client {
		c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 10 * time.Second})
		if err != nil {
			tb.Fatalf("etcd client for %v: %v", eps, err)
		}
		return c
	}
	// One client over all endpoints for the cells (clientv3 balances
	// requests round-robin), one per member for the failover.
	cli := newClient(endpoints...)
	single := make([]*clientv3.Client, len(members))
	for i, m := range members {
		single[i] = newClient(m.clientURL)
	}
	writable := func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := single[i].Put(ctx, "ready", "1")
		return err
	}
	for i := range members {
		eventually(tb, 30*time.Second, func() error { return writable(i) })
	}
	out, _ := exec.Command("etcd", "--version").Output()
	ct := &clusterTarget{
		kvTarget: &kvTarget{
			name: "etcd-3",
			measures: fmt.Sprintf("%s, 3 members on 127.0.0.101-103, defaults (fsync on, heartbeat 100ms, election timeout 1s)%s; clientv3 with all three endpoints (round-robin per request), one client shared by all goroutines",
				strings.SplitN(string(out), "\n", 2)[0], snapshotCountNote()),
			prepare: func(ctx context.Context, keys []string) error {
				for _, k := range keys {
					if _, err := cli.Put(ctx, k, "init"); err != nil {
						return fmt.Errorf("put %s: %w", k, err)
					}
				}
				return nil
			},
			client: func() kvClient { return etcdClient{cli} },
		},
		via:  func(i int) kvClient { return etcdClient{single[i]} },
		kill: func(i int) { members[i].kill() },
	}
	pids := func() {
		ct.procs = ct.procs[:0]
		for _, m := range members {
			ct.procs = append(ct.procs, m.cmd.Process.Pid)
		}
	}
	pids()
	ct.leader = func() int {
		found := -1
		eventually(tb, 30*time.Second, func() error {
			for i, m := range members {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				st, err := cli.Status(ctx, m.clientURL)
				cancel()
				if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
					found = i
					return nil
				}
			}
			return fmt.Errorf("no etcd member calls itself the leader")
		})
		return found
	}
	ct.restart = func(i int) {
		members[i].start(tb)
		pids()
		eventually(tb, 30*time.Second, func() error { return writable(i) })
	}
	ct.close = func() {
		cli.Close()
		for i, m := range members {
			single[i].Close()
			m.kill()
		}
	}
	// A benchmark that fails half way still ends the members before their
	// data dirs are removed (close is idempotent).
	tb.Cleanup(ct.close)
	return ct
}

// startKedgeCluster runs three `kedge server` processes joined into one
// cluster (the e2e cluster helpers), with kedge's default raft settings
// rather than the e2e tests' short ones, and info logging.
func startKedgeCluster(tb testing.TB, name, bin string) *clusterTarget {
	d := raftkv.DefaultConfig()
	// An etcd member is a store only; a kedge server's store cannot run
	// without its API server, but its agent can be left out, as on a
	// control-plane-only box (--disable-agent). KEDGE_BENCH_KEDGE_AGENT=1
	// runs the members with their agents (also for a baseline build older
	// than the flag); the agent adds ~2-2.5 MiB to each member's RSS.
	var args []string
	shape := "store + API server, no agent (--disable-agent)"
	if os.Getenv("KEDGE_BENCH_KEDGE_AGENT") == "1" {
		shape = "store + API server + agent"
	} else {
		args = append(args, "--disable-agent")
	}
	extra := append(args,
		"--raft-heartbeat-timeout", d.HeartbeatTimeout.String(), "--raft-election-timeout", d.ElectionTimeout.String(),
		"--raft-snapshot-threshold", strconv.FormatUint(d.SnapshotThreshold, 10),
		"--raft-trailing-logs", strconv.FormatUint(d.TrailingLogs, 10),
		"--raft-snapshot-interval", d.SnapshotInterval.String(),
		"--log-level", "info",
	)
	// KEDGE_BENCH_DEBUG_PORT=P serves member i's Go profiles on
	// 127.0.0.1:P+i (--debug-addr), to see where the time goes.
	debugPort, _ := strconv.Atoi(os.Getenv("KEDGE_BENCH_DEBUG_PORT"))
	member := func(i int) []string {
		if debugPort == 0 {
			return extra
		}
		return append(slices.Clone(extra), "--debug-addr", fmt.Sprintf("127.0.0.1:%d", debugPort+i))
	}
	servers := []*server{newClusterServerBin(tb, bin, nil, member(0)...)}
	for len(servers) < clusterMembers {
		servers = append(servers, newClusterServerBin(tb, bin, servers[0], member(len(servers))...))
	}
	stopTogether(tb, servers...)
	clients := make([]*nsClient, len(servers))
	for i, s := range servers {
		clients[i] = newNSClient(s)
	}
	var next atomic.Int64
	ct := &clusterTarget{
		kvTarget: &kvTarget{
			name: name,
			measures: fmt.Sprintf("3 `kedge server` processes (binary %s) on 127.0.N.x joined with --join (each: %s; the leader also runs controllers and scheduler), "+
				"raft defaults (heartbeat and election timeout %v, snapshot every %d entries), through the Kubernetes API as in BenchmarkStore; "+
				"each client sends its requests round-robin to the three servers (followers forward writes to the leader)", bin, shape, d.HeartbeatTimeout, d.SnapshotThreshold),
			prepare: func(ctx context.Context, keys []string) error {
				return createEvents(ctx, clients[0], keys)
			},
			client: func() kvClient {
				return &kedgeRoundRobin{members: clients, next: int(next.Add(1))}
			},
		},
		via:  func(i int) kvClient { return eventBenchClient{clients[i]} },
		kill: func(i int) { servers[i].sigkill() },
	}
	pids := func() {
		ct.procs = ct.procs[:0]
		for _, s := range servers {
			ct.procs = append(ct.procs, s.cmd.Process.Pid)
		}
	}
	pids()
	ct.leader = func() int {
		l := leaderIn(tb, servers[0], servers...)
		return slices.Index(servers, l)
	}
	ct.restart = func(i int) {
		s := servers[i]
		s.start()
		pids()
		eventually(tb, 60*time.Second, func() error {
			leaders := 0
			ms := s.members()
			for _, m := range ms {
				if m.state == "unreachable" {
					return fmt.Errorf("member %s unreachable", m.id)
				}
				if m.leader == "true" {
					leaders++
				}
			}
			if len(ms) != clusterMembers || leaders != 1 {
				return fmt.Errorf("members after restart: %+v", ms)
			}
			return putOnce(context.Background(), ct.via(i), "failover-probe-0", -1)
		})
	}
	ct.close = func() {
		var wg sync.WaitGroup
		for _, s := range servers {
			wg.Add(1)
			go func() { defer wg.Done(); s.stop() }()
		}
		wg.Wait()
	}
	return ct
}

// kedgeRoundRobin sends each operation to the next server in turn, as
// clientv3 balances requests over its endpoints. It is one benchmark
// client's own and not safe for concurrent use.
type kedgeRoundRobin struct {
	members []*nsClient
	next    int
}

func (k *kedgeRoundRobin) pick() eventBenchClient {
	k.next++
	return eventBenchClient{k.members[k.next%len(k.members)]}
}

func (k *kedgeRoundRobin) put(ctx context.Context, key string, value []byte) error {
	return k.pick().put(ctx, key, value)
}

func (k *kedgeRoundRobin) cas(ctx context.Context, key string, value []byte) error {
	return k.pick().cas(ctx, key, value)
}

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kedge.dev/kedge/raftstore"
	"kedge.dev/kedge/raftstore/raftkv"
)

// kvClient is one benchmark client: a blind put and a compare-and-swap
// (read the key, then write it conditionally on the mod revision read —
// Kubernetes' GuaranteedUpdate) of a 1 KiB value.
type kvClient interface {
	put(ctx context.Context, key string, value []byte) error
	cas(ctx context.Context, key string, value []byte) error
}

// kvTarget is one system under test. procs are the processes whose RSS and
// disk writes are counted (none: this process). A 3-member target is one
// more kvTarget with three procs.
type kvTarget struct {
	name     string
	measures string
	procs    []int
	// prepare creates the keys worker w will use (some systems cannot
	// update a key that does not exist).
	prepare func(ctx context.Context, keys []string) error
	client  func() kvClient
	close   func()
}

const (
	benchValueSize  = 1024
	benchKeysPerCli = 8
)

// BenchmarkStore compares kedge's store with etcd side by side: 1, 16 and
// 64 concurrent clients, puts and compare-and-swaps of 1 KiB values, fsync
// on. Figures are logged as a table with kedge/etcd ratios.
// BenchmarkStoreCluster does the same with three members each.
func BenchmarkStore(b *testing.B) {
	if _, err := exec.LookPath("etcd"); err != nil {
		b.Fatalf("etcd is needed as the peer (Debian etcd-server; make bench installs it): %v", err)
	}
	seconds := benchSeconds()
	b.Logf("command: make bench (go test -run '^$' -bench 'Store$' -benchtime 1x ./test/e2e); %.0fs per cell (KEDGE_BENCH_SECONDS)", seconds.Seconds())
	// KEDGE_BENCH_TARGETS (comma-separated: etcd, kedge-api, raftkv-inproc)
	// narrows the run, e.g. to profile one target.
	var cells []storeCell
	for _, t := range []struct {
		name  string
		start func(testing.TB) *kvTarget
	}{{"etcd", startEtcd}, {"kedge-api", startKedgeAPI}, {"raftkv-inproc", startRaftkvInProcess}} {
		if !benchTargetWanted(t.name) {
			continue
		}
		tg := t.start(b)
		b.Logf("%s: %s", tg.name, tg.measures)
		cells = append(cells, runStoreCells(b, []*kvTarget{tg}, seconds)...)
		tg.close()
	}
	logStoreRatios(b, cells, []string{"kedge-api", "raftkv-inproc"}, "etcd")
}

// benchSeconds is how long each cell runs: KEDGE_BENCH_SECONDS, default 5.
func benchSeconds() time.Duration {
	seconds := 5.0
	if v, err := strconv.ParseFloat(os.Getenv("KEDGE_BENCH_SECONDS"), 64); err == nil {
		seconds = v
	}
	return time.Duration(seconds * float64(time.Second))
}

// benchTargetWanted reports whether KEDGE_BENCH_TARGETS (comma-separated
// target names; empty: all) includes name.
func benchTargetWanted(name string) bool {
	only := os.Getenv("KEDGE_BENCH_TARGETS")
	return only == "" || strings.Contains(","+only+",", ","+name+",")
}

// benchClientCounts is the client counts of the store cells: 1, 16 and 64,
// or those KEDGE_BENCH_CLIENTS (comma-separated) names, e.g. to profile
// one cell.
func benchClientCounts() []int {
	var counts []int
	for _, f := range strings.Split(os.Getenv("KEDGE_BENCH_CLIENTS"), ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			counts = append(counts, n)
		}
	}
	if len(counts) == 0 {
		return []int{1, 16, 64}
	}
	return counts
}

// storeCell is one measured cell: a target, an operation and a number of
// concurrent clients.
type storeCell struct {
	target, op string
	clients    int
	res        benchResult
}

// runStoreCells measures each of tgs with 1, 16 and 64 clients, puts then
// compare-and-swaps, each cell for d, and logs one line per cell. With
// several targets (all running) the cells alternate between them, so that
// other work on a shared machine falls on both alike rather than on
// whichever ran at the time.
func runStoreCells(b *testing.B, tgs []*kvTarget, d time.Duration) []storeCell {
	var cells []storeCell
	for _, clients := range benchClientCounts() {
		keys, all := benchKeys("bench", clients)
		for _, tg := range tgs {
			if err := tg.prepare(context.Background(), all); err != nil {
				b.Fatalf("%s: prepare keys: %v", tg.name, err)
			}
		}
		for _, op := range []string{"put", "cas"} {
			for _, tg := range tgs {
				cells = append(cells, runLoggedCell(b, tg, op, keys, d))
			}
		}
	}
	return cells
}

// benchKeys returns each of clients clients its own benchKeysPerCli keys,
// named prefix-client-j, and all of them together.
func benchKeys(prefix string, clients int) (keys [][]string, all []string) {
	keys = make([][]string, clients)
	for w := range keys {
		for j := 0; j < benchKeysPerCli; j++ {
			keys[w] = append(keys[w], fmt.Sprintf("%s-%d-%d", prefix, w, j))
		}
		all = append(all, keys[w]...)
	}
	return keys, all
}

// runLoggedCell runs one cell and logs its line.
func runLoggedCell(b *testing.B, tg *kvTarget, op string, keys [][]string, d time.Duration) storeCell {
	clients := len(keys)
	res := runCell(b, tg, op, keys, d)
	members := ""
	if len(res.rssEach) > 1 {
		members = fmt.Sprintf(" (members %s, max %.1f)", joinMiB(res.rssEach), res.rssMaxMiB)
	}
	b.Logf("%-14s %-3s %2d clients: %8.0f ops/s  p50 %7.2fms  p99 %7.2fms  RSS %6.1f MiB%s of which anonymous %.1f MiB  %7.1f KiB written/1000 writes  CPU %.2f ms/op (%.0f%% of a core; clients %.0f%%, rest of the machine %.0f%%)  (%d ops, %d errors)",
		tg.name, op, clients, res.opsPerSec, ms(res.p50), ms(res.p99), res.rssMiB, members, res.anonMiB, res.writeKiBPer1000,
		res.cpuMsPerOp, res.cpuCores*100, res.clientCores*100, res.otherCores*100, res.ops, res.errors)
	return storeCell{tg.name, op, clients, res}
}

func joinMiB(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.1f", x)
	}
	return strings.Join(s, "/")
}

// logStoreRatios logs each of names against peer for every op and client
// count both measured, and reports the 16-client put throughput ratio.
func logStoreRatios(b *testing.B, cells []storeCell, names []string, peer string) {
	b.Logf("ratios kedge / %s (throughput >1 is better; latency, RSS, bytes <1 is better):", peer)
	find := func(target, op string, clients int) *benchResult {
		for i := range cells {
			if cells[i].target == target && cells[i].op == op && cells[i].clients == clients {
				return &cells[i].res
			}
		}
		return nil
	}
	for _, name := range names {
		for _, op := range []string{"put", "cas"} {
			for _, clients := range []int{1, 16, 64} {
				k, e := find(name, op, clients), find(peer, op, clients)
				if k == nil || e == nil || e.opsPerSec == 0 {
					continue
				}
				maxRSS := ""
				if len(k.rssEach) > 1 {
					maxRSS = fmt.Sprintf("  RSS max member %.2fx", k.rssMaxMiB/e.rssMaxMiB)
				}
				b.Logf("%-14s %-3s %2d clients: throughput %.2fx  p50 %.2fx  p99 %.2fx  RSS %.2fx%s  RSS anonymous %.2fx  bytes/write %.2fx  CPU/op %.2fx",
					name, op, clients, k.opsPerSec/e.opsPerSec, ratio(k.p50, e.p50), ratio(k.p99, e.p99), k.rssMiB/e.rssMiB, maxRSS, k.anonMiB/e.anonMiB, k.writeKiBPer1000/e.writeKiBPer1000, k.cpuMsPerOp/e.cpuMsPerOp)
				if op == "put" && clients == 16 {
					b.ReportMetric(k.opsPerSec/e.opsPerSec, name+"-put16-throughput-x-"+peer)
				}
			}
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

type benchResult struct {
	ops, errors int
	opsPerSec   float64
	p50, p99    time.Duration
	// rssMiB is the sum over the target's processes, rssMaxMiB the
	// largest, rssEach each one's, read at the end of the cell.
	rssMiB, rssMaxMiB float64
	rssEach           []float64
	// rssPeakMiB is the largest sum of the processes' RSS sampled every
	// 500 ms during the cell.
	rssPeakMiB float64
	// anonMiB is the sum of the processes' anonymous memory (RssAnon:
	// heap, stacks, caches), the part of RSS that is each process's own;
	// the rest is mostly the binary's pages, shared and reclaimable.
	anonMiB         float64
	writeKiBPer1000 float64
	// cpuMsPerOp is the CPU time (user + system) of the target's processes
	// per operation, cpuCores their CPU time over the wall time.
	cpuMsPerOp, cpuCores float64
	// clientCores is the CPU time of this process (the clients) over the
	// wall time: with the target's, it shows whether the machine's cores
	// were the limit.
	clientCores float64
	// otherCores is the machine's busy CPU time over the wall time minus
	// the target's and the clients': other processes, and the kernel's
	// work that is no process's (softirq: loopback TCP; writeback). Some
	// is always there; a large value (other users of a shared machine)
	// makes the cell's figures suspect.
	otherCores float64
}

// runCell runs len(keys) clients for d, each on its own keys.
func runCell(b *testing.B, tg *kvTarget, op string, keys [][]string, d time.Duration) benchResult {
	procs := tg.procs
	if len(procs) == 0 {
		procs = []int{os.Getpid()}
	}
	self := []int{os.Getpid()}
	w0, cpu0, self0, busy0 := writeBytes(b, procs), cpuTime(b, procs), cpuTime(b, self), machineBusy(b)
	// Each write carries a new value: kedge's API, like Kubernetes, skips
	// writes that change nothing.
	pad := strings.Repeat("x", benchValueSize)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	var wg sync.WaitGroup
	stopSampling := make(chan struct{})
	peak := make(chan float64, 1)
	go func() { peak <- sampleRSSPeak(tg.procs, stopSampling) }()
	start := time.Now()
	for _, ks := range keys {
		c := tg.client()
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			bad := 0
			for i := 0; ctx.Err() == nil; i++ {
				seq := strconv.Itoa(i) + "-"
				value := []byte(seq + pad[len(seq):])
				t0 := time.Now()
				var err error
				if op == "put" {
					err = c.put(context.Background(), ks[i%len(ks)], value)
				} else {
					err = c.cas(context.Background(), ks[i%len(ks)], value)
				}
				if err != nil {
					bad++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopSampling)
	written, cpu, selfCPU := writeBytes(b, procs)-w0, cpuTime(b, procs)-cpu0, cpuTime(b, self)-self0
	busy := machineBusy(b) - busy0
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r := benchResult{ops: len(lat), errors: errs, opsPerSec: float64(len(lat)) / elapsed.Seconds()}
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
		r.writeKiBPer1000 = float64(written) / 1024 / float64(len(lat)) * 1000
		r.cpuMsPerOp = ms(cpu) / float64(len(lat))
	}
	r.cpuCores, r.clientCores = cpu.Seconds()/elapsed.Seconds(), selfCPU.Seconds()/elapsed.Seconds()
	if len(tg.procs) == 0 { // the target is this process: do not count it twice
		selfCPU = 0
	}
	r.otherCores = max(0, (busy-cpu-selfCPU).Seconds()/elapsed.Seconds())
	for _, p := range procs {
		m := rssMiB(b, p)
		r.anonMiB += rssAnonMiB(b, p)
		r.rssEach = append(r.rssEach, m)
		r.rssMiB += m
		r.rssMaxMiB = max(r.rssMaxMiB, m)
	}
	r.rssPeakMiB = max(<-peak, r.rssMiB)
	return r
}

// sampleRSSPeak returns the largest sum of the RSS of pids, sampled every
// 500 ms until stop is closed (0 for no pids). A process that cannot be
// read (it exited) counts as 0.
func sampleRSSPeak(pids []int, stop <-chan struct{}) float64 {
	if len(pids) == 0 {
		return 0
	}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	var peak float64
	for {
		var sum float64
		for _, pid := range pids {
			sum += statusKiB(pid, "VmRSS:") / 1024
		}
		peak = max(peak, sum)
		select {
		case <-stop:
			return peak
		case <-t.C:
		}
	}
}

// statusKiB reads a "Name: N kB" field of /proc/<pid>/status (0 if it
// cannot).
func statusKiB(pid int, field string) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return 0
}

// cpuTime sums the user and system CPU time of the processes (fields 14
// and 15 of /proc/<pid>/stat, in clock ticks of 1/100 s on Linux).
func cpuTime(b testing.TB, pids []int) time.Duration {
	var ticks int64
	for _, pid := range pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			b.Fatalf("read stat of %d: %v", pid, err)
		}
		// The command name may hold spaces; the fields after it do not.
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
		for _, i := range []int{11, 12} { // utime, stime: fields 14, 15
			n, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				b.Fatalf("stat of %d: field %d: %v", pid, i+3, err)
			}
			ticks += n
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// machineBusy is the CPU time all cores spent busy (the first line of
// /proc/stat: user, nice, system, irq, softirq and steal; not idle or
// iowait).
func machineBusy(b testing.TB) time.Duration {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatalf("read /proc/stat: %v", err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			b.Fatalf("/proc/stat field %d: %v", i, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// writeBytes sums write_bytes of /proc/<pid>/io: bytes the processes
// caused to be sent to the storage layer.
func writeBytes(b testing.TB, pids []int) int64 {
	var n int64
	for _, pid := range pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
		if err != nil {
			b.Fatalf("read io of %d: %v", pid, err)
		}
		for _, l := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(l, "write_bytes: "); ok {
				x, _ := strconv.ParseInt(v, 10, 64)
				n += x
			}
		}
	}
	return n
}

// startEtcd runs Debian's etcd (fsync on, defaults) on loopback ports.
func startEtcd(tb testing.TB) *kvTarget {
	dir := tb.TempDir()
	cport, pport := freePort(tb), freePort(tb)
	curl, purl := fmt.Sprintf("http://127.0.0.1:%d", cport), fmt.Sprintf("http://127.0.0.1:%d", pport)
	cmd := exec.Command("etcd", "--name", "bench", "--data-dir", dir,
		"--listen-client-urls", curl, "--advertise-client-urls", curl,
		"--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
		"--initial-cluster", "bench="+purl, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start etcd: %v", err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{curl}, DialTimeout: 10 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	eventually(tb, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := cli.Put(ctx, "ready", "1")
		return err
	})
	out, _ := exec.Command("etcd", "--version").Output()
	return &kvTarget{
		name:     "etcd",
		measures: fmt.Sprintf("%s as one member, clientv3 (gRPC), one client connection shared by all goroutines", strings.SplitN(string(out), "\n", 2)[0]),
		procs:    []int{cmd.Process.Pid},
		prepare: func(ctx context.Context, keys []string) error {
			for _, k := range keys {
				if _, err := cli.Put(ctx, k, "init"); err != nil {
					return err
				}
			}
			return nil
		},
		client: func() kvClient { return etcdClient{cli} },
		close: func() {
			cli.Close()
			cmd.Process.Kill()
			cmd.Wait()
		},
	}
}

type etcdClient struct{ c *clientv3.Client }

func (e etcdClient) put(ctx context.Context, key string, value []byte) error {
	_, err := e.c.Put(ctx, key, string(value))
	return err
}

func (e etcdClient) cas(ctx context.Context, key string, value []byte) error {
	g, err := e.c.Get(ctx, key)
	if err != nil {
		return err
	}
	if len(g.Kvs) == 0 {
		return errors.New("key missing")
	}
	r, err := e.c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", g.Kvs[0].ModRevision)).
		Then(clientv3.OpPut(key, string(value))).Commit()
	if err == nil && !r.Succeeded {
		return errors.New("cas conflict")
	}
	return err
}

// startKedgeAPI runs the real kedge server; kedge has no network KV API, so
// its peer of etcd's KV is the Kubernetes API. Each key is an Event in
// namespace default whose 1 KiB message is the value: no controller
// watches Events, so the figures are the API server and the store.
// (Namespaces, used by the linearizability test, wake the namespace
// controller, which lists every namespace on each change.)
func startKedgeAPI(tb testing.TB) *kvTarget {
	s := newServer(tb)
	c := newNSClient(s)
	return &kvTarget{
		name: "kedge-api",
		measures: "the real `kedge server` process (store + API server + controllers + agent) through its Kubernetes API over HTTPS/JSON: " +
			"put = PUT Event without resourceVersion, cas = GET + PUT with the resourceVersion read; each key an Event with a 1 KiB message",
		procs:   []int{s.cmd.Process.Pid},
		prepare: func(ctx context.Context, keys []string) error { return createEvents(ctx, c, keys) },
		client:  func() kvClient { return eventBenchClient{c} },
		close:   func() {},
	}
}

// createEvents creates the Event of each key that does not exist yet.
func createEvents(ctx context.Context, c *nsClient, keys []string) error {
	for _, k := range keys {
		_, err := c.doRaw(ctx, "POST", eventsPath, eventBody(k, "init", ""))
		var st *errStatus
		if err != nil && !(errors.As(err, &st) && st.code == 409) {
			return fmt.Errorf("create event %s: %w", k, err)
		}
	}
	return nil
}

const eventsPath = "/api/v1/namespaces/default/events"

func eventBody(name, message, rv string) map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Event",
		"metadata":       map[string]any{"name": name, "namespace": "default", "resourceVersion": rv},
		"involvedObject": map[string]any{"kind": "Pod", "namespace": "default", "name": "bench"},
		"reason":         "Bench", "type": "Normal", "message": message,
	}
}

type eventBenchClient struct{ c *nsClient }

func (e eventBenchClient) put(ctx context.Context, key string, value []byte) error {
	_, err := e.c.doRaw(ctx, "PUT", eventsPath+"/"+key, eventBody(key, string(value), ""))
	return err
}

func (e eventBenchClient) cas(ctx context.Context, key string, value []byte) error {
	b, err := e.c.doRaw(ctx, "GET", eventsPath+"/"+key, nil)
	if err != nil {
		return err
	}
	var o nsObject
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	_, err = e.c.doRaw(ctx, "PUT", eventsPath+"/"+key, eventBody(key, string(value), o.Metadata.ResourceVersion))
	return err
}

// startRaftkvInProcess opens raftkv (kedge's store: hashicorp/raft + SQLite,
// default config, fsync on) inside this process: the store alone, without
// network or API.
func startRaftkvInProcess(tb testing.TB) *kvTarget {
	cfg := raftkv.DefaultConfig()
	cfg.DataDir = filepath.Join(tb.TempDir(), "db")
	cfg.NodeID, cfg.BindAddr = "bench", fmt.Sprintf("127.0.0.1:%d", freePort(tb))
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := raftkv.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return &kvTarget{
		name:     "raftkv-inproc",
		measures: "raftstore/raftkv in the benchmark process (no network, no API): RSS, disk writes and CPU are of the whole go test process",
		prepare: func(ctx context.Context, keys []string) error {
			for _, k := range keys {
				if _, err := s.Create(ctx, k, []byte("init")); err != nil && !errors.Is(err, raftstore.ErrKeyExists) {
					return err
				}
			}
			return nil
		},
		client: func() kvClient { return storeBenchClient{s} },
		close:  func() { s.Close() },
	}
}

type storeBenchClient struct{ s raftstore.Store }

func (c storeBenchClient) put(ctx context.Context, key string, value []byte) error {
	_, err := c.s.Update(ctx, key, value, 0)
	return err
}

func (c storeBenchClient) cas(ctx context.Context, key string, value []byte) error {
	kv, err := c.s.Get(ctx, key)
	if err != nil {
		return err
	}
	_, err = c.s.Update(ctx, key, value, kv.ModRevision)
	return err
}

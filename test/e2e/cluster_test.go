package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// clusterArgs are the raft settings every server of a test cluster gets:
// short timeouts so failover is quick, and a small snapshot threshold so a
// late server is caught up by a snapshot within the test.
var clusterArgs = []string{
	"--raft-heartbeat-timeout", "500ms", "--raft-election-timeout", "500ms",
	"--raft-snapshot-threshold", "64", "--raft-trailing-logs", "16", "--raft-snapshot-interval", "1s",
}

// newClusterServer starts one `kedge server` on its own loopback address
// 127.0.N.x with its own ports, bridge, pod CIDR, cgroup root and data dir.
// With join set it joins that server's cluster with its join token.
func newClusterServer(t testing.TB, join *server, extra ...string) *server {
	t.Helper()
	return newClusterServerBin(t, binPath(t), join, extra...)
}

// newClusterServerBin is newClusterServer running the kedge binary at bin
// (a benchmark compares two builds side by side).
func newClusterServerBin(t testing.TB, bin string, join *server, extra ...string) *server {
	t.Helper()
	instanceSeq.Lock()
	instanceSeq.n++
	n := instanceSeq.n
	instanceSeq.Unlock()
	base := t.TempDir()
	s := &server{t: t, bin: bin, dataDir: filepath.Join(base, "data"), runDir: filepath.Join(base, "run"), instance: n}
	imgDst := filepath.Join(s.dataDir, "images")
	if err := os.MkdirAll(imgDst, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(imagesDir(t), "all.tar")
	if err := os.Link(src, filepath.Join(imgDst, "all.tar")); err != nil {
		copyFile(t, src, filepath.Join(imgDst, "all.tar"))
	}
	ip := fmt.Sprintf("127.0.%d.%d", 1+os.Getpid()%200, 10+n)
	s.apiPort = freePort(t)
	tag := fmt.Sprintf("%d%d", os.Getpid()%1000, n)
	s.args = []string{"server",
		"--data-dir", s.dataDir,
		"--run-dir", s.runDir,
		"--listen", fmt.Sprintf("%s:%d", ip, s.apiPort),
		"--advertise-address", ip,
		"--kubelet-listen", fmt.Sprintf("%s:%d", ip, freePort(t)),
		"--raft-listen", fmt.Sprintf("%s:%d", ip, freePort(t)),
		"--node-name", fmt.Sprintf("e2e-server-%d", n),
		"--cgroup-root", "/kedge-e2e-" + tag,
		"--bridge", "kedgee2e" + tag,
		"--pod-cidr", fmt.Sprintf("10.%d.%d.0/24", 200+n%50, os.Getpid()%250),
		"--log-level", "debug",
	}
	s.args = append(s.args, clusterArgs...)
	if join != nil {
		s.args = append(s.args, "--join", join.apiURL(), "--token-file", filepath.Join(join.dataDir, "tokens", "join"))
	}
	s.args = append(s.args, extra...)
	s.kubecfg = filepath.Join(s.dataDir, "kubeconfig.yaml")
	s.bridge = "kedgee2e" + tag
	s.start()
	t.Cleanup(s.teardown)
	if !slices.Contains(extra, "--disable-agent") {
		s.waitNodeReady(s.nodeName(), 60*time.Second)
	}
	return s
}

func (s *server) apiURL() string {
	for i, a := range s.args {
		if a == "--listen" {
			return "https://" + s.args[i+1]
		}
	}
	s.t.Fatal("no --listen")
	return ""
}

func (s *server) nodeName() string {
	for i, a := range s.args {
		if a == "--node-name" {
			return s.args[i+1]
		}
	}
	return ""
}

func (s *server) waitNodeReady(name string, timeout time.Duration) {
	s.t.Helper()
	eventually(s.t, timeout, func() error {
		out, err := s.kubectlErr("1.32", "get", "node", name, "--no-headers")
		if err != nil || !strings.Contains(out, " Ready ") {
			return fmt.Errorf("node %s not Ready: %v %s", name, err, out)
		}
		return nil
	})
}

// kill ends the server with SIGKILL (a crash or power cut).
func (s *server) sigkill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// member is one row of `kedge server members`.
type member struct{ id, addr, suffrage, leader, state string }

func (s *server) members() []member {
	s.t.Helper()
	out, err := exec.Command(s.bin, "server", "members", "--data-dir", s.dataDir).CombinedOutput()
	if err != nil {
		s.t.Fatalf("kedge server members: %v\n%s", err, out)
	}
	var ms []member
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 5 {
			s.t.Fatalf("members line %q", line)
		}
		ms = append(ms, member{id: f[0], addr: f[1], suffrage: f[2], leader: f[3], state: f[4]})
	}
	return ms
}

// leaderIn returns which of servers the members list calls the leader,
// waiting for one to be elected.
func leaderIn(t testing.TB, via *server, servers ...*server) *server {
	t.Helper()
	var found *server
	eventually(t, 30*time.Second, func() error {
		for _, m := range via.members() {
			if m.leader != "true" {
				continue
			}
			for _, s := range servers {
				if s.nodeName() == m.id {
					found = s
					return nil
				}
			}
		}
		return fmt.Errorf("no leader among the servers yet")
	})
	return found
}

func TestClusterThreeServers(t *testing.T) {
	s1 := newClusterServer(t, nil)
	if ms := s1.members(); len(ms) != 1 || ms[0].suffrage != "voter" || ms[0].leader != "true" {
		t.Fatalf("single server members = %+v", ms)
	}
	s2 := newClusterServer(t, s1)
	s3 := newClusterServer(t, s2) // joins through a follower
	all := []*server{s1, s2, s3}
	stopTogether(t, all...)
	ms := s3.members()
	if len(ms) != 3 {
		t.Fatalf("members = %+v", ms)
	}
	leaders := 0
	for _, m := range ms {
		if m.suffrage != "voter" || m.state == "unreachable" {
			t.Errorf("member %+v: want a reachable voter", m)
		}
		if m.leader == "true" {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("%d leaders in %+v", leaders, ms)
	}
	// Every server has the cluster's CA and tokens, so one kubeconfig
	// works against each.
	for _, f := range []string{"tls/ca.crt", "tls/ca.key", "tokens/admin", "tokens/node", "tokens/join"} {
		a, _ := os.ReadFile(filepath.Join(s1.dataDir, f))
		for _, s := range all[1:] {
			if b, _ := os.ReadFile(filepath.Join(s.dataDir, f)); !bytes.Equal(a, b) || len(a) == 0 {
				t.Errorf("%s differs on %s", f, s.nodeName())
			}
		}
	}
	leader := leaderIn(t, s1, all...)
	var followers []*server
	for _, s := range all {
		if s != leader {
			followers = append(followers, s)
		}
	}
	t.Logf("leader %s", leader.nodeName())

	// kubectl against followers: a write through one, read on the other,
	// and every server's agent is a Ready node.
	f0, f1 := followers[0], followers[1]
	f0.kubectl("1.32", "create", "namespace", "through-follower")
	if out := f1.kubectl("1.32", "get", "namespace", "through-follower", "-o", "jsonpath={.metadata.name}"); out != "through-follower" {
		t.Fatalf("read on the other follower = %q", out)
	}
	out := f1.kubectl("1.32", "get", "nodes", "--no-headers")
	for _, s := range all {
		if !regexpLine(out, `^`+s.nodeName()+`\s+Ready\s`) {
			t.Errorf("node %s not Ready:\n%s", s.nodeName(), out)
		}
	}

	// A watch on the leader, reconnected to a follower when the leader is
	// killed, sees every write exactly once and in order.
	w := startWatchLog(t, leader, followers)
	writer := &cmWriter{c: f0.httpClient(t)}
	for i := range 30 {
		writer.create(t, fmt.Sprintf("w-%03d", i))
	}
	killed := time.Now()
	leader.sigkill()
	failover := writer.create(t, "w-030")
	t.Logf("failover: a write through a follower waited %v after SIGKILL of the leader", failover.Round(time.Millisecond))
	for i := 31; i < 60; i++ {
		writer.create(t, fmt.Sprintf("w-%03d", i))
	}
	newLeader := leaderIn(t, f1, followers...)
	t.Logf("new leader %s (members checked %v after the kill, after 30 more writes)", newLeader.nodeName(), time.Since(killed).Round(time.Millisecond))
	w.check(t, writer.acked())

	// Controllers moved to the new leader: the namespace controller
	// finalizes a namespace deletion.
	f1.kubectl("1.32", "create", "namespace", "after-failover")
	f1.kubectl("1.32", "delete", "namespace", "after-failover", "--timeout=60s")

	// The dead server is removed; the members agree.
	if out, err := exec.Command(f1.bin, "server", "remove", leader.nodeName(), "--data-dir", f1.dataDir).CombinedOutput(); err != nil {
		t.Fatalf("kedge server remove: %v\n%s", err, out)
	}
	if ms := f0.members(); len(ms) != 2 {
		t.Fatalf("members after remove = %+v", ms)
	}
	f1.kubectl("1.32", "delete", "node", leader.nodeName())

	// A new server catches up by snapshot. The leader must have compacted
	// its log since it took over (threshold 64, trailing 16): write until
	// it says so, as its snapshot timer need not have fired yet.
	mark := newLeader.logSize()
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; !strings.Contains(newLeader.logFrom(mark), `msg="compacting logs"`); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("the new leader did not compact its log within 60s of writes")
		}
		writer.create(t, fmt.Sprintf("c-%03d", i))
		if i%20 == 19 {
			time.Sleep(500 * time.Millisecond)
		}
	}
	// It runs without an agent (--disable-agent), as a control-plane-only
	// box would: the store and the API, no Node, no pod network.
	s4 := newClusterServer(t, f1, "--disable-agent")
	stopTogether(t, s4)
	if out := s4.kubectl("1.32", "get", "namespace", "w-059", "-o", "name"); strings.TrimSpace(out) != "namespace/w-059" {
		t.Fatalf("new server misses data: %q", out)
	}
	if !strings.Contains(strings.ToLower(s4.logs()), "installed remote snapshot") {
		t.Errorf("new server was not caught up by a snapshot; log tail:\n%s", s4.logs())
	}
	if ms := s4.members(); len(ms) != 3 {
		t.Fatalf("members with the new server = %+v", ms)
	}
	if out := s4.kubectl("1.32", "get", "nodes", "-o", "name"); strings.Contains(out, s4.nodeName()) {
		t.Errorf("a server with --disable-agent registered its node:\n%s", out)
	}
	if err := exec.Command("ip", "link", "show", s4.bridge).Run(); err == nil {
		t.Errorf("a server with --disable-agent made its pod bridge %s", s4.bridge)
	}
	if !strings.Contains(s4.logs(), "agent disabled (--disable-agent)") {
		t.Errorf("no line about the disabled agent in the log:\n%s", s4.logs())
	}

	// A restart with the same flags (--join included, as a systemd unit
	// keeps them) rejoins nothing: the server resumes as a member.
	s4.restart()
	if ms := s4.members(); len(ms) != 3 {
		t.Fatalf("members after a restart = %+v", ms)
	}
	// The log holds both runs: the first start joined, the restart not.
	if n := strings.Count(s4.logs(), `msg="joined the cluster"`); n != 1 {
		t.Errorf("%d joins in the log of a server started twice, want 1", n)
	}
}

// TestClusterFiveServers runs a five-voter cluster (plus a sixth server,
// a nonvoter) through a leader loss. It takes about 12 s here, so it runs
// in make e2e.
func TestClusterFiveServers(t *testing.T) {
	first := newClusterServer(t, nil, "--voters", "5")
	all := []*server{first}
	for range 4 {
		all = append(all, newClusterServer(t, all[len(all)-1], "--voters", "5"))
	}
	sixth := newClusterServer(t, first, "--voters", "5")
	stopTogether(t, append(all, sixth)...)
	voters := 0
	for _, m := range first.members() {
		if m.suffrage == "voter" {
			voters++
		}
		if m.id == sixth.nodeName() && m.suffrage != "nonvoter" {
			t.Errorf("sixth server is %s, want nonvoter", m.suffrage)
		}
	}
	if voters != 5 {
		t.Fatalf("%d voters, want 5", voters)
	}
	leader := leaderIn(t, first, all...)
	var rest []*server
	for _, s := range all {
		if s != leader {
			rest = append(rest, s)
		}
	}
	leader.sigkill()
	writer := &cmWriter{c: rest[0].httpClient(t)}
	t.Logf("five servers: failover write waited %v", writer.create(t, "after-kill").Round(time.Millisecond))
	rest[1].kubectl("1.32", "get", "namespace", "after-kill")
}

// stopTogether stops the servers at the end of the test, all at once
// (before the harness's per-server teardown, which would otherwise stop
// them one by one and leave the last ones without a quorum). The test
// creates no pods, so there is nothing to delete.
func stopTogether(t testing.TB, servers ...*server) {
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, s := range servers {
			wg.Add(1)
			go func() { defer wg.Done(); s.stop() }()
		}
		wg.Wait()
	})
}

// httpClient is a raw API client of this server that reports errors.
func (s *server) httpClient(t *testing.T) *rawClient { return s.raw() }

// cmWriter creates Namespaces and remembers which were acknowledged.
type cmWriter struct {
	c    *rawClient
	mu   sync.Mutex
	done []string
}

// create makes one Namespace, retrying through errors of a failover (an
// AlreadyExists after a failed attempt means the attempt committed), and
// returns how long it took.
func (w *cmWriter) create(t *testing.T, name string) time.Duration {
	t.Helper()
	start := time.Now()
	body := fmt.Sprintf(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q}}`, name)
	for attempt := 0; ; attempt++ {
		req, _ := http.NewRequest("POST", w.c.base+"/api/v1/namespaces", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+w.c.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := w.c.client.Do(req)
		code := 0
		if err == nil {
			code = resp.StatusCode
			resp.Body.Close()
		}
		if code == http.StatusCreated || (code == http.StatusConflict && attempt > 0) {
			w.mu.Lock()
			w.done = append(w.done, name)
			w.mu.Unlock()
			return time.Since(start)
		}
		if time.Since(start) > 60*time.Second {
			t.Fatalf("create %s: status %d, %v", name, code, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *cmWriter) acked() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.done...)
}

// watchLog is a Namespace watch that reconnects, from the last
// resourceVersion it saw, to the next server when its server dies.
type watchLog struct {
	mu     sync.Mutex
	names  []string
	revs   []int64
	errs   []string
	cancel context.CancelFunc
	done   chan struct{}
}

func startWatchLog(t *testing.T, first *server, then []*server) *watchLog {
	t.Helper()
	c := first.raw()
	code, body := c.do(t, "GET", "/api/v1/namespaces", "", "")
	if code != 200 {
		t.Fatalf("list: %d %s", code, body)
	}
	var list struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	json.Unmarshal(body, &list)
	ctx, cancel := context.WithCancel(context.Background())
	w := &watchLog{cancel: cancel, done: make(chan struct{})}
	clients := []*rawClient{c}
	for _, s := range then {
		clients = append(clients, s.raw())
	}
	go func() {
		defer close(w.done)
		rv := list.Metadata.ResourceVersion
		for i := 0; ctx.Err() == nil; i++ {
			rc := clients[min(i, len(clients)-1)]
			rv = w.follow(ctx, rc, rv)
			time.Sleep(100 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

// follow reads one watch connection until it ends and returns the last
// resourceVersion seen.
func (w *watchLog) follow(ctx context.Context, c *rawClient, rv string) string {
	req, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/api/v1/namespaces?watch=1&resourceVersion="+rv, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	pool := c.client.Transport.(*http.Transport).TLSClientConfig.RootCAs
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Do(req)
	if err != nil {
		w.note("connect " + c.base + ": " + err.Error())
		return rv
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		w.note(fmt.Sprintf("watch %s: %d %s", c.base, resp.StatusCode, b))
		return rv
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Type   string `json:"type"`
			Object struct {
				Metadata struct {
					Name            string `json:"name"`
					ResourceVersion string `json:"resourceVersion"`
				} `json:"metadata"`
			} `json:"object"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			w.note("decode: " + err.Error())
			continue
		}
		if ev.Type == "BOOKMARK" || ev.Type == "ERROR" {
			continue
		}
		var r int64
		fmt.Sscan(ev.Object.Metadata.ResourceVersion, &r)
		w.mu.Lock()
		w.names = append(w.names, ev.Type+" "+ev.Object.Metadata.Name)
		w.revs = append(w.revs, r)
		w.mu.Unlock()
		rv = ev.Object.Metadata.ResourceVersion
	}
	w.note("watch on " + c.base + " ended")
	return rv
}

func (w *watchLog) note(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.errs = append(w.errs, s)
}

// check waits until every acknowledged Namespace was seen, then checks the
// revisions strictly increase and no Namespace was added twice.
func (w *watchLog) check(t *testing.T, acked []string) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		seen := map[string]bool{}
		for _, n := range w.names {
			seen[n] = true
		}
		for _, a := range acked {
			if !seen["ADDED "+a] {
				return fmt.Errorf("watch has not seen %s (notes: %v)", a, w.errs)
			}
		}
		return nil
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	count := map[string]int{}
	for i, n := range w.names {
		count[n]++
		if count[n] > 1 {
			t.Errorf("watch delivered %s twice", n)
		}
		if i > 0 && w.revs[i] <= w.revs[i-1] {
			t.Errorf("watch revision went from %d to %d at %s", w.revs[i-1], w.revs[i], n)
		}
	}
	t.Logf("watch: %d events across reconnects (%v)", len(w.names), w.errs)
}

// logSize is how many bytes the server has logged so far.
func (s *server) logSize() int {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.Len()
}

// logFrom returns what the server logged after the first off bytes.
func (s *server) logFrom(off int) string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return string(s.log.Bytes()[off:])
}

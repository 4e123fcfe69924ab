package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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

// longRun reports whether the long variants run (make e2e-long).
func longRun() bool { return os.Getenv("KEDGE_LONG") == "1" }

// kill ends the server with SIGKILL (a power cut, for the process) and
// waits for it to be gone.
func (s *server) kill() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// kedgeCLI runs a kedge CLI verb and returns its combined output.
func (s *server) kedgeCLI(args ...string) (string, error) {
	out, err := exec.Command(s.bin, args...).CombinedOutput()
	return string(out), err
}

// nsClient talks to the Kubernetes API of one endpoint over plain HTTP,
// treating each Namespace's annotation as a register.
type nsClient struct {
	base, token string
	http        *http.Client
}

const valueAnnotation = "kedge.test/value"

func newNSClient(s *server) *nsClient {
	rc := s.raw()
	tr := rc.client.Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &nsClient{base: rc.base, token: rc.token, http: &http.Client{Transport: tr}}
}

type nsObject struct {
	Metadata struct {
		Name            string            `json:"name"`
		ResourceVersion string            `json:"resourceVersion,omitempty"`
		Annotations     map[string]string `json:"annotations,omitempty"`
	} `json:"metadata"`
}

// errStatus is a non-2xx answer.
type errStatus struct {
	code int
	body string
}

func (e *errStatus) Error() string { return fmt.Sprintf("HTTP %d: %s", e.code, e.body) }

func (c *nsClient) do(ctx context.Context, method, path string, body any) (*nsObject, error) {
	b, err := c.doRaw(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	var o nsObject
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("decode %s: %w", b, err)
	}
	return &o, nil
}

// doRaw sends one request and returns the body of a 2xx answer.
func (c *nsClient) doRaw(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			// Never reached a server: certainly not applied.
			return nil, fmt.Errorf("%w: %w", linearize.ErrNotApplied, err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, &errStatus{resp.StatusCode, string(b)}
	}
	return b, nil
}

func nsBody(name, value, rv string) *nsObject {
	o := &nsObject{}
	o.Metadata.Name, o.Metadata.ResourceVersion = name, rv
	o.Metadata.Annotations = map[string]string{valueAnnotation: value}
	return o
}

func (c *nsClient) create(ctx context.Context, name, value string) error {
	_, err := c.do(ctx, "POST", "/api/v1/namespaces", nsBody(name, value, ""))
	return err
}

func (c *nsClient) get(ctx context.Context, name string) (*nsObject, error) {
	return c.do(ctx, "GET", "/api/v1/namespaces/"+name, nil)
}

// Read implements linearize.Client.
func (c *nsClient) Read(ctx context.Context, key string) (string, error) {
	o, err := c.get(ctx, key)
	if err != nil {
		return "", err
	}
	return o.Metadata.Annotations[valueAnnotation], nil
}

// Write implements linearize.Client: an unconditional PUT.
func (c *nsClient) Write(ctx context.Context, key, value string) error {
	_, err := c.do(ctx, "PUT", "/api/v1/namespaces/"+key, nsBody(key, value, ""))
	return err
}

// CAS implements linearize.Client: GET, then PUT with the resourceVersion
// read (Kubernetes' optimistic concurrency).
func (c *nsClient) CAS(ctx context.Context, key, value string) (string, bool, error) {
	o, err := c.get(ctx, key)
	if err != nil {
		return "", false, fmt.Errorf("%w: read: %w", linearize.ErrNotApplied, err)
	}
	old := o.Metadata.Annotations[valueAnnotation]
	_, err = c.do(ctx, "PUT", "/api/v1/namespaces/"+key, nsBody(key, value, o.Metadata.ResourceVersion))
	var st *errStatus
	if errors.As(err, &st) && st.code == http.StatusConflict {
		return old, false, nil
	}
	return old, err == nil, err
}

// A store file corrupted while the server is stopped makes the next start
// fail at once with one line naming the file and the recovery command; the
// file is left as it was.
func TestStoreCorruptFileRefusesToStart(t *testing.T) {
	s := newServer(t)
	s.kubectl("1.32", "create", "namespace", "before-corruption")
	s.stop()
	path := filepath.Join(s.dataDir, "db", "state.db")
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte("garbage!"), 512), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	before, _ := os.ReadFile(path)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, s.args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("kedge server on a corrupt store: %v, want exit code 1\n%s", err, stderr.String())
	}
	var last string
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if strings.HasPrefix(l, "kedge: ") {
			last = l
		}
	}
	t.Logf("error line: %s", last)
	for _, want := range []string{path, "corrupt", "kedge store restore BACKUP.db --data-dir"} {
		if !strings.Contains(last, want) {
			t.Errorf("error line lacks %q: %s", want, last)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("the corrupt state.db was modified by the failed start")
	}
}

// `kedge store backup` copies the store of a running server; `kedge store
// restore` builds a new single-server cluster from it with the same
// objects and resourceVersions.
func TestStoreBackupRestore(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	c := newNSClient(s)
	rvs := map[string]string{}
	for i := 0; i < 5; i++ {
		name := fmt.Sprintf("backed-up-%d", i)
		if err := c.create(ctx, name, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		o, err := c.get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		rvs[name] = o.Metadata.ResourceVersion
	}
	backup := filepath.Join(t.TempDir(), "kedge-backup.db")
	out, err := s.kedgeCLI("store", "backup", backup, "--data-dir", s.dataDir)
	if err != nil {
		t.Fatalf("kedge store backup: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	if err := c.create(ctx, "after-backup", "x"); err != nil {
		t.Fatal(err)
	}
	s.stop()

	// A fresh server (own data dir, node name, ports), stopped, its store
	// replaced by the restored backup.
	r := newServer(t)
	r.stop()
	if out, err := r.kedgeCLI("store", "restore", backup, "--data-dir", r.dataDir); err == nil {
		t.Fatalf("restore into a data dir holding a store succeeded:\n%s", out)
	}
	if err := os.RemoveAll(filepath.Join(r.dataDir, "db")); err != nil {
		t.Fatal(err)
	}
	out, err = r.kedgeCLI("store", "restore", backup, "--data-dir", r.dataDir, "--node-name", flagValue(r.args, "--node-name"),
		"--raft-listen", flagValue(r.args, "--raft-listen"))
	if err != nil {
		t.Fatalf("kedge store restore: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	r.start()
	rc := newNSClient(r)
	for name, rv := range rvs {
		o, err := rc.get(ctx, name)
		if err != nil {
			t.Fatalf("after restore, %s: %v", name, err)
		}
		if o.Metadata.ResourceVersion != rv {
			t.Errorf("%s: resourceVersion %s after restore, %s before", name, o.Metadata.ResourceVersion, rv)
		}
	}
	var st *errStatus
	if _, err := rc.get(ctx, "after-backup"); !errors.As(err, &st) || st.code != 404 {
		t.Errorf("namespace created after the backup: %v, want 404", err)
	}
	// Clients' resourceVersions stay meaningful: a CAS with one read
	// before the backup succeeds.
	if _, err := rc.do(ctx, "PUT", "/api/v1/namespaces/backed-up-0", nsBody("backed-up-0", "cas", rvs["backed-up-0"])); err != nil {
		t.Fatalf("update with a pre-backup resourceVersion: %v", err)
	}
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// `kedge server --reset-cluster` keeps every object (single node; the HA
// tests cover a lost quorum).
func TestStoreResetCluster(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	c := newNSClient(s)
	for i := 0; i < 5; i++ {
		if err := c.create(ctx, fmt.Sprintf("kept-%d", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	before := s.kubectl("1.32", "get", "namespaces", "-o", "custom-columns=NAME:.metadata.name,RV:.metadata.resourceVersion", "--no-headers")
	s.stop()
	plain := s.args
	s.args = append(append([]string{}, plain...), "--reset-cluster")
	s.start()
	if !strings.Contains(s.logs(), "raft cluster reset") {
		t.Errorf("no reset logged:\n%s", s.logs())
	}
	after := s.kubectl("1.32", "get", "namespaces", "-o", "custom-columns=NAME:.metadata.name,RV:.metadata.resourceVersion", "--no-headers")
	for _, l := range strings.Split(strings.TrimSpace(before), "\n") {
		if !strings.Contains(after, l) {
			t.Errorf("after --reset-cluster, %q is missing:\n%s", l, after)
		}
	}
	if err := c.create(ctx, "after-reset", "x"); err != nil {
		t.Fatal(err)
	}
	s.args = plain
	s.restart()
	if _, err := c.get(ctx, "after-reset"); err != nil {
		t.Fatal(err)
	}
}

// Every create acknowledged before a SIGKILL of the server is there after
// the restart.
func TestStoreDurabilityAcrossSIGKILL(t *testing.T) {
	s := newServer(t)
	c := newNSClient(s)
	rounds := 2
	if longRun() {
		rounds = 10
	}
	var acked []string
	for round := 0; round < rounds; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					name := fmt.Sprintf("dur-%d-%d-%d", round, w, i)
					if err := c.create(ctx, name, "v"); err != nil {
						return // the server is gone
					}
					mu.Lock()
					acked = append(acked, name)
					mu.Unlock()
				}
			}()
		}
		time.Sleep(3 * time.Second)
		s.kill() // writers are mid-request
		cancel()
		wg.Wait()
		s.start()
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n == 0 {
			t.Fatalf("round %d: no write was acknowledged", round)
		}
		list := s.kubectl("1.32", "get", "namespaces", "-o", "name")
		missing := 0
		for _, name := range acked {
			if !strings.Contains(list, "namespace/"+name+"\n") {
				missing++
				t.Errorf("round %d: acknowledged namespace %s is gone after SIGKILL", round, name)
			}
		}
		t.Logf("round %d: %d acknowledged creates survived SIGKILL (%d missing)", round, n, missing)
	}
}

// Concurrent reads, writes and compare-and-swaps from several clients,
// while a nemesis SIGKILLs and restarts the server, form a linearizable
// history (checked with porcupine).
func TestStoreLinearizableUnderKills(t *testing.T) {
	s := newServer(t)
	duration := 30 * time.Second
	if longRun() {
		duration = 20 * time.Minute
	}
	keys := []string{"lin-0", "lin-1", "lin-2", "lin-3", "lin-4"}
	setup := newNSClient(s)
	for _, k := range keys {
		if err := setup.create(context.Background(), k, ""); err != nil {
			t.Fatal(err)
		}
	}
	// One client per goroutine; with several servers each client would
	// take another endpoint.
	var clients []linearize.Client
	for i := 0; i < 6; i++ {
		clients = append(clients, newNSClient(s))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nemesisDone := make(chan int)
	go func() {
		kills := 0
		defer func() { nemesisDone <- kills }()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(4 * time.Second):
			}
			s.kill()
			kills++
			time.Sleep(500 * time.Millisecond)
			s.start()
		}
	}()
	h := linearize.Record(ctx, linearize.Config{Keys: keys, Duration: duration, OpTimeout: 10 * time.Second, Seed: uint64(time.Now().UnixNano())}, clients)
	cancel()
	kills := <-nemesisDone
	res := linearize.Check(h, 5*time.Minute)
	t.Logf("%d kills; %d operations checked (%d completed, %d with unknown outcome, %d dropped): %s",
		kills, res.Ops, h.Completed, res.UnknownOps, h.Dropped, res.Verdict)
	if kills == 0 || h.Completed < 100 {
		t.Fatalf("the run did not exercise the store: %d kills, %d completed operations", kills, h.Completed)
	}
	if res.Verdict != porcupine.Ok {
		viz := filepath.Join(os.TempDir(), fmt.Sprintf("kedge-linearizability-%d.html", time.Now().Unix()))
		if err := linearize.Visualize(res, viz); err == nil {
			t.Logf("visualization: %s", viz)
		}
		t.Fatalf("history is %s", res.Verdict)
	}
}

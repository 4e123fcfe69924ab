// Package e2e drives the built kedge binary the way a user does: it starts
// `kedge server` as a process, then talks to it with the real kubectl, the
// kedge CLI and plain HTTP. The tests run only when KEDGE_BIN points at a
// built binary (make e2e and make test set it); otherwise they say so and
// skip, loudly.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
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

	"golang.org/x/sys/unix"
	"sigs.k8s.io/yaml"
)

// kubectlPath returns the path of kubectl minor version v (e.g. "1.32").
func kubectlPath(v string) string {
	return "/usr/lib/google-cloud-sdk/bin/kubectl." + v
}

func binPath(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("KEDGE_BIN")
	if bin == "" {
		t.Skip("e2e: KEDGE_BIN is not set; run `make e2e` (it builds bin/kedge and the test images)")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("e2e: KEDGE_BIN=%s: %v", bin, err)
	}
	return bin
}

// installBinary copies the kedge binary src to a fresh directory, as an
// installer puts it on a node, and drops the copy from the page cache, so
// the processes started from it read it from disk as after a boot.
// Benchmarks that report RSS run kedge this way: the linker writes
// bin/kedge through a shared mapping, which leaves its pages in 2 MiB
// page-cache folios that the kernel then maps whole into every process
// running it (smaps FilePmdMapped), ~2.5 MiB more RSS than the same binary
// has on a node. Debian's etcd, the stores' peer, is installed by dpkg.
func installBinary(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if err == nil {
		err = unix.Fadvise(int(out.Fd()), 0, 0, unix.FADV_DONTNEED)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("install %s as %s: %v", src, dst, err)
	}
	return dst
}

func imagesDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("KEDGE_IMAGES")
	if dir == "" {
		t.Fatal("e2e: KEDGE_IMAGES is not set; run `make e2e`")
	}
	return dir
}

// sharedDir is ../shared beside the repository (DEVELOPERS.md).
func sharedDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("KEDGE_SHARED"); d != "" {
		return d
	}
	d, err := filepath.Abs("../../../shared")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, "manifests", "seed-examples.yaml")); err != nil {
		t.Fatalf("e2e: shared manifests not found at %s (set KEDGE_SHARED): %v", d, err)
	}
	return d
}

var instanceSeq struct {
	sync.Mutex
	n int
}

// server is one running `kedge server` process.
type server struct {
	t       testing.TB
	bin     string
	dataDir string
	runDir  string
	args    []string
	apiPort int
	process
	instance int
	kubecfg  string
	bridge   string
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newServer prepares a data dir with the test images in its air-gap folder
// and starts kedge server with its own ports, bridge, pod CIDR and cgroup
// root so tests never touch each other or the host's defaults.
func newServer(t testing.TB) *server {
	t.Helper()
	return newServerFrom(t, binPath(t))
}

// newServerFrom is newServer with the server run from the kedge binary at
// bin.
func newServerFrom(t testing.TB, bin string) *server {
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
	tars, _ := filepath.Glob(filepath.Join(imagesDir(t), "all.tar"))
	if len(tars) == 0 {
		t.Fatalf("e2e: no image tarballs in %s; run `make images`", imagesDir(t))
	}
	for _, src := range tars {
		if err := os.Link(src, filepath.Join(imgDst, filepath.Base(src))); err != nil {
			copyFile(t, src, filepath.Join(imgDst, filepath.Base(src)))
		}
	}
	s.apiPort = freePort(t)
	tag := fmt.Sprintf("%d%d", os.Getpid()%1000, n)
	s.args = []string{"server",
		"--data-dir", s.dataDir,
		"--run-dir", s.runDir,
		"--listen", fmt.Sprintf("127.0.0.1:%d", s.apiPort),
		"--advertise-address", "127.0.0.1",
		"--kubelet-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--raft-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--node-name", fmt.Sprintf("e2e-node-%d", n),
		"--cgroup-root", "/kedge-e2e-" + tag,
		// The process in the name: test processes of several checkouts may
		// run at once on one machine and must not delete each other's bridge.
		"--bridge", "kedgee2e" + tag,
		"--pod-cidr", fmt.Sprintf("10.%d.%d.0/24", 200+n%50, os.Getpid()%250),
		"--log-level", "debug",
	}
	s.kubecfg = filepath.Join(s.dataDir, "kubeconfig.yaml")
	s.bridge = "kedgee2e" + tag
	s.start()
	t.Cleanup(s.teardown)
	return s
}

// teardown deletes every pod through the API (containers outlive the
// server by design, so stopping it alone would leave them running), stops
// the server and removes the bridge it made.
func (s *server) teardown() {
	select {
	case <-s.done:
	default:
		if out, err := s.kubectlErr("1.32", "delete", "pods", "--all", "--all-namespaces", "--grace-period=1", "--timeout=60s"); err != nil {
			s.t.Errorf("teardown: delete pods: %v\n%s", err, out)
		}
	}
	s.stop()
	exec.Command("ip", "link", "del", s.bridge).Run()
	removeCgroupTree(s.cgroupRoot())
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// process is a kedge process a test started (server or agent) with its
// output.
type process struct {
	cmd   *exec.Cmd
	done  chan struct{} // closed when it exited
	logMu sync.Mutex
	log   bytes.Buffer
}

// launch starts bin with args, output into log; it dies with the test.
func (p *process) launch(t testing.TB, bin string, args []string) {
	t.Helper()
	p.cmd = exec.Command(bin, args...)
	w := lockedWriter{&p.logMu, &p.log}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s %s: %v", bin, args[0], err)
	}
	p.done = make(chan struct{})
	go func() { p.cmd.Wait(); close(p.done) }()
}

// terminate sends SIGTERM (what systemd sends) and waits; after 30 s it
// kills the process and reports false.
func (p *process) terminate() bool {
	if p.cmd == nil || p.cmd.Process == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		return false
	}
}

// logs is the tail of the output.
func (p *process) logs() string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	b := p.log.Bytes()
	if len(b) > 20000 {
		b = b[len(b)-20000:]
	}
	return string(b)
}

func (s *server) start() {
	s.t.Helper()
	s.launch(s.t, s.bin, s.args)
	s.waitReady(90 * time.Second)
}

// waitReady waits until the API answers and a node is Ready; for a
// server with --disable-agent, which adds no node, until /readyz says ok.
func (s *server) waitReady(timeout time.Duration) {
	s.t.Helper()
	noAgent := slices.Contains(s.args, "--disable-agent")
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			s.t.Fatalf("kedge server exited early:\n%s", s.logs())
		default:
		}
		if _, err := os.Stat(s.kubecfg); err == nil {
			if noAgent {
				if out, err := s.kubectlErr("1.32", "get", "--raw", "/readyz"); err == nil && strings.TrimSpace(out) == "ok" {
					return
				}
			} else if out, err := s.kubectlErr("1.32", "get", "nodes", "--no-headers"); err == nil && strings.Contains(out, " Ready ") {
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	s.t.Fatalf("kedge server not ready within %v:\n%s", timeout, s.logs())
}

// stop ends the server with SIGTERM (what systemd sends) and waits.
func (s *server) stop() {
	if !s.terminate() {
		s.t.Errorf("kedge server did not stop within 30s of SIGTERM")
	}
	if s.t.Failed() && s.cmd != nil {
		s.t.Logf("kedge server log (tail):\n%s", s.logs())
	}
}

func (s *server) restart() {
	s.t.Helper()
	s.stop()
	s.start()
}

// kubectl runs kubectl of minor version v and fails the test on error.
func (s *server) kubectl(v string, args ...string) string {
	s.t.Helper()
	out, err := s.kubectlErr(v, args...)
	if err != nil {
		s.t.Fatalf("kubectl %s %s: %v\n%s", v, strings.Join(args, " "), err, out)
	}
	return out
}

func (s *server) kubectlErr(v string, args ...string) (string, error) {
	return s.kubectlStdin(v, "", args...)
}

func (s *server) kubectlStdin(v, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectlPath(v), append([]string{"--kubeconfig", s.kubecfg}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// kubeconfig fields for raw HTTP calls.
type rawClient struct {
	base   string
	token  string
	client *http.Client
}

func (s *server) raw() *rawClient {
	s.t.Helper()
	b, err := os.ReadFile(s.kubecfg)
	if err != nil {
		s.t.Fatal(err)
	}
	var kc struct {
		Clusters []struct {
			Cluster struct {
				Server string `json:"server"`
				CA     string `json:"certificate-authority-data"`
			} `json:"cluster"`
		} `json:"clusters"`
		Users []struct {
			User struct {
				Token string `json:"token"`
			} `json:"user"`
		} `json:"users"`
	}
	if err := yaml.Unmarshal(b, &kc); err != nil {
		s.t.Fatal(err)
	}
	ca, err := base64.StdEncoding.DecodeString(kc.Clusters[0].Cluster.CA)
	if err != nil {
		s.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		s.t.Fatal("kubeconfig CA is not PEM")
	}
	return &rawClient{
		base:   kc.Clusters[0].Cluster.Server,
		token:  kc.Users[0].User.Token,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	}
}

// do sends one request and returns status code and body.
func (c *rawClient) do(t testing.TB, method, path, contentType, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// status is the part of metav1.Status the tests look at.
type status struct {
	Kind    string `json:"kind"`
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Details *struct {
		Causes []struct {
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"causes"`
	} `json:"details"`
}

func parseStatus(t testing.TB, b []byte) status {
	t.Helper()
	var st status
	if err := json.Unmarshal(b, &st); err != nil || st.Kind != "Status" {
		t.Fatalf("response is not a Kubernetes Status: %v\n%s", err, b)
	}
	return st
}

// eventually retries f until it returns nil or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("condition not met within %v: %v", timeout, err)
}

// seedDocs returns the YAML documents of the shared seed manifests.
func seedDocs(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sharedDir(t), "manifests", "seed-examples.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(b))
	flush := func() {
		if strings.Contains(cur.String(), "kind:") {
			docs = append(docs, cur.String())
		}
		cur.Reset()
	}
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "---" {
			flush()
			continue
		}
		cur.WriteString(sc.Text() + "\n")
	}
	flush()
	return docs
}

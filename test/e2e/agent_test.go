package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// agentNode is a `kedge agent` process: an agent-only node of srv's
// cluster, with its own data dir, ports, bridge, pod CIDR and cgroup root.
type agentNode struct {
	t       testing.TB
	srv     *server
	name    string
	dataDir string
	args    []string
	bin     string // the kedge binary it runs
	bridge  string
	cgroup  string
	process
}

// newAgentNode starts an agent-only node that joins srv with its join
// token and waits until its Node is Ready. Cleanup deletes its pods
// through the API while it still runs, then stops it.
func newAgentNode(t testing.TB, srv *server, extra ...string) *agentNode {
	t.Helper()
	return newAgentNodeFrom(t, srv, binPath(t), extra...)
}

// newAgentNodeFrom is newAgentNode with the agent run from the kedge binary
// at bin.
func newAgentNodeFrom(t testing.TB, srv *server, bin string, extra ...string) *agentNode {
	t.Helper()
	instanceSeq.Lock()
	instanceSeq.n++
	n := instanceSeq.n
	instanceSeq.Unlock()
	base := t.TempDir()
	tag := fmt.Sprintf("%d%d", os.Getpid()%1000, n)
	a := &agentNode{t: t, srv: srv, bin: bin, name: fmt.Sprintf("e2e-agent-%d", n), dataDir: filepath.Join(base, "data"),
		bridge: "kedgee2e" + tag, cgroup: "/kedge-e2e-" + tag}
	imgDst := filepath.Join(a.dataDir, "images")
	if err := os.MkdirAll(imgDst, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(imagesDir(t), "all.tar")
	if err := os.Link(src, filepath.Join(imgDst, "all.tar")); err != nil {
		copyFile(t, src, filepath.Join(imgDst, "all.tar"))
	}
	a.args = append([]string{"agent",
		"--server", srv.apiURL(),
		"--data-dir", a.dataDir,
		"--run-dir", filepath.Join(base, "run"),
		"--node-name", a.name,
		"--kubelet-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--advertise-address", "127.0.0.1",
		"--cgroup-root", a.cgroup,
		"--bridge", a.bridge,
		"--pod-cidr", fmt.Sprintf("10.%d.%d.0/24", 200+n%50, os.Getpid()%250),
		"--log-level", "debug",
	}, extra...)
	a.start("--token-file", filepath.Join(srv.dataDir, "tokens", "join"))
	t.Cleanup(a.teardown)
	srv.waitNodeReady(a.name, 60*time.Second)
	return a
}

func (a *agentNode) start(extra ...string) {
	a.t.Helper()
	a.launch(a.t, a.bin, append(a.args, extra...))
}

func (a *agentNode) stop() {
	if !a.terminate() {
		a.t.Errorf("kedge agent did not stop within 30s of SIGTERM")
	}
}

func (a *agentNode) teardown() {
	select {
	case <-a.done:
	default:
		if out, err := a.srv.kubectlErr("1.32", "delete", "pods", "--all-namespaces", "--field-selector", "spec.nodeName="+a.name,
			"--grace-period=1", "--timeout=60s"); err != nil {
			a.t.Errorf("agent teardown: delete pods: %v\n%s", err, out)
		}
	}
	a.stop()
	exec.Command("ip", "link", "del", a.bridge).Run()
	removeCgroupTree(a.cgroup)
}

// An agent-only node joins with the join token, runs the pods scheduled to
// it, and serves their logs and exec through the server; it keeps its
// credentials, so a restart needs no token.
func TestAgentOnlyNode(t *testing.T) {
	srv := newServer(t)
	a := newAgentNode(t, srv)

	labels := srv.kubectl("1.32", "get", "node", a.name, "-o", "jsonpath={.metadata.labels}")
	if strings.Contains(labels, "control-plane") || !strings.Contains(labels, a.name) {
		t.Fatalf("agent node labels: %s", labels)
	}
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: on-agent}
spec:
  nodeSelector: {kubernetes.io/hostname: %s}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: registry.k8s.io/busybox
    command: ["sh", "-c", "echo hello from the agent; sleep 3600"]
`, a.name)
	if out, err := srv.kubectlStdin("1.32", manifest, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	running := func() {
		t.Helper()
		eventually(t, 60*time.Second, func() error {
			out, err := srv.kubectlErr("1.32", "get", "pod", "on-agent", "-o", "jsonpath={.spec.nodeName} {.status.phase}")
			if err != nil || out != a.name+" Running" {
				return fmt.Errorf("pod: %q %v\nagent log:\n%s", out, err, tail(a.logs(), 3000))
			}
			return nil
		})
	}
	running()
	if out := srv.kubectl("1.32", "logs", "on-agent"); !strings.Contains(out, "hello from the agent") {
		t.Fatalf("logs through the server: %q", out)
	}
	if out := srv.kubectl("1.32", "exec", "on-agent", "--", "hostname"); strings.TrimSpace(out) != "on-agent" {
		t.Fatalf("exec through the server: %q", out)
	}
	id := srv.kubectl("1.32", "get", "pod", "on-agent", "-o", "jsonpath={.status.containerStatuses[0].containerID}")

	// A restart uses the stored credentials: no token this time.
	a.stop()
	a.start()
	srv.waitNodeReady(a.name, 60*time.Second)
	running()
	if out := srv.kubectl("1.32", "exec", "on-agent", "--", "echo", "again"); strings.TrimSpace(out) != "again" {
		t.Fatalf("exec after the agent restarted: %q", out)
	}
	if id2 := srv.kubectl("1.32", "get", "pod", "on-agent", "-o", "jsonpath={.status.containerStatuses[0].containerID}"); id2 != id {
		t.Fatalf("the container changed across the agent's restart: %s -> %s", id, id2)
	}

	// A node without credentials and a wrong token is refused, clearly.
	bad := exec.Command(binPath(t), "agent", "--server", srv.apiURL(), "--data-dir", t.TempDir(), "--run-dir", t.TempDir(),
		"--node-name", "intruder", "--token", "K10"+strings.Repeat("0", 64)+"::nope")
	out, err := bad.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "kedge:") {
		t.Fatalf("agent with a wrong token: %v\n%s", err, out)
	}
	if nodes := srv.kubectl("1.32", "get", "nodes", "-o", "name"); strings.Contains(nodes, "intruder") {
		t.Fatalf("a node with a wrong token registered: %s", nodes)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

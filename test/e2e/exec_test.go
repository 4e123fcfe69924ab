package e2e

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const streamPods = `apiVersion: v1
kind: Pod
metadata:
  name: shell
spec:
  containers:
  - name: shell
    image: registry.k8s.io/busybox
    command: ["sleep", "3600"]
---
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: nginx
    image: nginx:1.14.2
    ports:
    - containerPort: 80
---
apiVersion: v1
kind: Pod
metadata:
  name: attach-tty
spec:
  containers:
  - name: sh
    image: registry.k8s.io/busybox
    command: ["sh"]
    stdin: true
    tty: true
---
apiVersion: v1
kind: Pod
metadata:
  name: attach-stdin
spec:
  containers:
  - name: reader
    image: registry.k8s.io/busybox
    command: ["sh", "-c", "while read l; do echo got:$l; done"]
    stdin: true
`

// TestExecAttachPortForwardCp drives the streaming subresources with
// kubectl 1.32 (WebSocket first: v5.channel.k8s.io for exec/cp, SPDY
// tunnelled in a WebSocket for port-forward) and 1.27 (SPDY only).
func TestExecAttachPortForwardCp(t *testing.T) {
	s := newServer(t)
	for _, v := range []string{"1.32", "1.27"} {
		t.Run("kubectl-"+v, func(t *testing.T) {
			ns := "streams-" + strings.ReplaceAll(v, ".", "-")
			s.kubectl(v, "create", "namespace", ns)
			if out, err := s.kubectlStdin(v, streamPods, "apply", "-n", ns, "-f", "-"); err != nil {
				t.Fatalf("apply: %v\n%s", err, out)
			}
			waitPod(t, s, v, ns, "shell", "Running")
			waitPod(t, s, v, ns, "web", "Running")
			waitPod(t, s, v, ns, "attach-tty", "Running")
			waitPod(t, s, v, ns, "attach-stdin", "Running")
			t.Run("exec", func(t *testing.T) { execPlain(t, s, v, ns) })
			t.Run("exec-stdin", func(t *testing.T) { execStdin(t, s, v, ns) })
			t.Run("exec-it", func(t *testing.T) { execInteractive(t, s, v, ns) })
			t.Run("exec-disconnect", func(t *testing.T) { execDisconnect(t, s, v, ns) })
			t.Run("attach-it", func(t *testing.T) { attachInteractive(t, s, v, ns) })
			t.Run("attach-i", func(t *testing.T) { attachStdin(t, s, v, ns) })
			t.Run("cp", func(t *testing.T) { copyBothWays(t, s, v, ns) })
			t.Run("port-forward", func(t *testing.T) { portForward(t, s, v, ns) })
			t.Run("timer-slack", func(t *testing.T) { containerTimerSlack(t, s, v, ns) })
		})
	}
}

// containerTimerSlack checks that the server runs with its larger timer
// slack (--timer-slack, default 1ms) and that containers do not inherit it:
// both a container's own process and a process started by kubectl exec get
// the kernel's default, 50 µs.
func containerTimerSlack(t *testing.T, s *server, v, ns string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/timerslack_ns", s.cmd.Process.Pid))
	if err != nil || strings.TrimSpace(string(b)) != "1000000" {
		t.Errorf("kedge server's timer slack: %q, %v; want 1000000 ns", b, err)
	}
	out, err := s.kubectlErr(v, "exec", "-n", ns, "shell", "--", "cat", "/proc/self/timerslack_ns")
	if err != nil || strings.TrimSpace(out) != "50000" {
		t.Errorf("timer slack of a process started by kubectl exec: %q, %v; want 50000 ns", out, err)
	}
	// The pod's own process ("sleep 3600", in this server's cgroups),
	// seen from the host: reading another process's slack needs
	// CAP_SYS_NICE, which containers lack.
	cgroupRoot := ""
	for i, a := range s.args {
		if a == "--cgroup-root" {
			cgroupRoot = s.args[i+1]
		}
	}
	procs, _ := os.ReadDir("/proc")
	found := 0
	for _, p := range procs {
		cmdline, err := os.ReadFile("/proc/" + p.Name() + "/cmdline")
		if err != nil || string(cmdline) != "sleep\x003600\x00" {
			continue
		}
		if cg, err := os.ReadFile("/proc/" + p.Name() + "/cgroup"); err != nil || !strings.Contains(string(cg), cgroupRoot+"/") {
			continue
		}
		found++
		b, err := os.ReadFile("/proc/" + p.Name() + "/timerslack_ns")
		if err != nil || strings.TrimSpace(string(b)) != "50000" {
			t.Errorf("timer slack of container process %s (sleep 3600): %q, %v; want 50000 ns", p.Name(), b, err)
		}
	}
	if found == 0 {
		t.Errorf("no container process \"sleep 3600\" found under cgroup %s", cgroupRoot)
	}
}

// kubectlCmd builds a kubectl command of version v against s.
func (s *server) kubectlCmd(ctx context.Context, v string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, kubectlPath(v), append([]string{"--kubeconfig", s.kubecfg}, args...)...)
}

func execPlain(t *testing.T, s *server, v, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := s.kubectlCmd(ctx, v, "exec", "-n", ns, "shell", "--", "sh", "-c", "echo hi; echo oops >&2; exit 3")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("exit: %v, want exit code 3\nstdout %q\nstderr %q", err, stdout.String(), stderr.String())
	}
	if stdout.String() != "hi\n" || !strings.Contains(stderr.String(), "oops") || !strings.Contains(stderr.String(), "command terminated with exit code 3") {
		t.Fatalf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
	if v >= "1.30" {
		// kubectl ≥ 1.30 must get the WebSocket protocol, not fall back.
		cmd := s.kubectlCmd(ctx, v, "exec", "-v=4", "-n", ns, "shell", "--", "true")
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "subprotocol is v5.channel.k8s.io") {
			t.Fatalf("exec over WebSocket v5: %v\n%s", err, out)
		}
	}
	// kubectl 1.30–1.32 print "Unknown stream id 1, discarding message"
	// when a frame arrives before their streams exist; the server must not
	// send one early, so stderr stays empty. Several runs: it was a race.
	for i := 0; i < 5; i++ {
		hcmd := s.kubectlCmd(ctx, v, "exec", "-n", ns, "shell", "-c", "shell", "--", "hostname")
		var hout, herr strings.Builder
		hcmd.Stdout, hcmd.Stderr = &hout, &herr
		if err := hcmd.Run(); err != nil || hout.String() != "shell\n" || herr.Len() != 0 {
			t.Fatalf("hostname (run %d): %v, stdout %q, stderr %q", i, err, hout.String(), herr.String())
		}
	}
	out, err := s.kubectlErr(v, "exec", "-n", ns, "shell", "--", "no-such-binary")
	if err == nil || !strings.Contains(out, "no-such-binary") {
		t.Fatalf("missing binary: %v\n%s", err, out)
	}
}

func execStdin(t *testing.T, s *server, v, ns string) {
	data := strings.Repeat("data line\n", 20000) // 200 kB, several frames
	out, err := s.kubectlStdin(v, data, "exec", "-i", "-n", ns, "shell", "--", "sh", "-c", "cat | wc -c")
	if err != nil || strings.TrimSpace(out) != fmt.Sprint(len(data)) {
		t.Fatalf("exec -i: %v\n%q", err, out)
	}
	out, err = s.kubectlStdin(v, "data\n", "exec", "-i", "-n", ns, "shell", "--", "cat")
	if err != nil || out != "data\n" {
		t.Fatalf("exec -i cat: %v\n%q", err, out)
	}
}

// execInteractive runs `kubectl exec -it` on a pseudo-terminal made by
// script(1), types into the shell and reads its prompt and answers.
func execInteractive(t *testing.T, s *server, v, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	term := startOnTerminal(ctx, t, s, v, "exec -it -n "+ns+" shell -- sh")
	term.waitFor("# ") // busybox's root prompt
	term.write("echo answer=$((6*7)); tty; stty size\r")
	term.waitFor("answer=42")
	term.waitFor("/dev/pts/")
	term.write("exit 5\r")
	err := term.wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 5 {
		t.Fatalf("exec -it exit: %v, want 5\n%s", err, term.all.String())
	}
}

// attachInteractive attaches a terminal to a tty: true container's shell,
// types a command, detaches and checks the container still runs.
func attachInteractive(t *testing.T, s *server, v, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	term := startOnTerminal(ctx, t, s, v, "attach -it -n "+ns+" attach-tty")
	term.waitFor("If you don't see a command prompt")
	term.write("echo attached=$((3+4))\r")
	term.waitFor("attached=7")
	term.cmd.Process.Kill() // detach
	term.wait()
	if got := s.kubectl(v, "get", "pod", "-n", ns, "attach-tty", "-o", "jsonpath={.status.phase}"); got != "Running" {
		t.Fatalf("attach-tty is %s after detach", got)
	}
	if out := s.kubectl(v, "logs", "-n", ns, "attach-tty"); !strings.Contains(out, "attached=7") {
		t.Fatalf("tty output not logged:\n%s", out)
	}
}

// attachStdin pipes a line into a stdin: true container with kubectl
// attach -i and reads the container's answer.
func attachStdin(t *testing.T, s *server, v, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := s.kubectlCmd(ctx, v, "attach", "-i", "-n", ns, "attach-stdin")
	word := "hello-" + strings.ReplaceAll(v, ".", "-")
	cmd.Stdin = strings.NewReader(word + "\n")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cancel()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if sc.Text() == "got:"+word {
			return
		}
	}
	t.Fatalf("no got:%s from the attached container", word)
}

// terminal is a kubectl command run on a pseudo-terminal by script(1).
type terminal struct {
	t     *testing.T
	ctx   context.Context
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   chan string
	all   strings.Builder
}

func startOnTerminal(ctx context.Context, t *testing.T, s *server, v, args string) *terminal {
	t.Helper()
	kc := fmt.Sprintf("%s --kubeconfig %s %s", kubectlPath(v), s.kubecfg, args)
	cmd := exec.CommandContext(ctx, "script", "-qec", kc, "/dev/null")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	term := &terminal{t: t, ctx: ctx, cmd: cmd, stdin: stdin, out: lines}
	go func() {
		r := bufio.NewReader(out)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				lines <- string(buf[:n])
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	return term
}

// waitFor reads the terminal's output until it contains want.
func (term *terminal) waitFor(want string) {
	term.t.Helper()
	for !strings.Contains(term.all.String(), want) {
		select {
		case l, ok := <-term.out:
			if !ok {
				term.t.Fatalf("output ended before %q:\n%s", want, term.all.String())
			}
			term.all.WriteString(l)
		case <-term.ctx.Done():
			term.t.Fatalf("no %q in output:\n%s", want, term.all.String())
		}
	}
}

func (term *terminal) write(s string) { io.WriteString(term.stdin, s) }

// wait reads the rest of the output and waits for the command.
func (term *terminal) wait() error {
	for l := range term.out {
		term.all.WriteString(l)
	}
	return term.cmd.Wait()
}

// execDisconnect kills kubectl during a long exec: the process in the
// container must be killed and reaped.
func execDisconnect(t *testing.T, s *server, v, ns string) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := s.kubectlCmd(ctx, v, "exec", "-n", ns, "shell", "--", "sleep", "4242")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		if out := s.kubectl(v, "exec", "-n", ns, "shell", "--", "ps"); !strings.Contains(out, "sleep 4242") {
			return fmt.Errorf("sleep 4242 not running:\n%s", out)
		}
		return nil
	})
	cancel()
	cmd.Wait()
	eventually(t, 30*time.Second, func() error {
		if out := s.kubectl(v, "exec", "-n", ns, "shell", "--", "ps"); strings.Contains(out, "sleep 4242") {
			return fmt.Errorf("sleep 4242 still running after the client left:\n%s", out)
		}
		return nil
	})
}

func copyBothWays(t *testing.T, s *server, v, ns string) {
	dir := t.TempDir()
	src := filepath.Join(dir, "up.txt")
	content := "copied " + v + "\n" + strings.Repeat("x", 100000) + "\n"
	if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	// kubectl cp resolves relative local paths against its working dir.
	cmd := s.kubectlCmd(context.Background(), v, "cp", "up.txt", ns+"/shell:/tmp/up.txt")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cp to pod: %v\n%s", err, out)
	}
	if out := s.kubectl(v, "exec", "-n", ns, "shell", "--", "md5sum", "/tmp/up.txt"); !strings.HasPrefix(out, md5Hex(content)) {
		t.Fatalf("md5 in pod %q, want %s", out, md5Hex(content))
	}
	cmd = s.kubectlCmd(context.Background(), v, "cp", ns+"/shell:/tmp/up.txt", "down.txt")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cp from pod: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "down.txt"))
	if err != nil || string(got) != content {
		t.Fatalf("copied back %d bytes (%v), want %d", len(got), err, len(content))
	}
}

func portForward(t *testing.T, s *server, v, ns string) {
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := s.kubectlCmd(ctx, v, "port-forward", "-v=4", "-n", ns, "pod/web", fmt.Sprintf("%d:80", port))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cancel()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Forwarding from") {
				select {
				case ready <- sc.Text():
				default:
				}
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("port-forward not ready; stderr:\n%s", stderr.String())
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; i < 3; i++ { // several connections over one session
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatalf("GET %d through port-forward: %v\nstderr:\n%s", i, err, stderr.String())
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "nginx") {
			t.Fatalf("GET %d: %s\n%s", i, resp.Status, body)
		}
	}
	if strings.Contains(stderr.String(), "error") {
		t.Fatalf("port-forward stderr:\n%s", stderr.String())
	}
	// kubectl ≥ 1.31 tunnels SPDY in a WebSocket; it must not fall back.
	if v >= "1.31" && !strings.Contains(stderr.String(), "negotiated protocol: portforward.k8s.io") {
		t.Fatalf("port-forward did not use the WebSocket tunnel; stderr:\n%s", stderr.String())
	}
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

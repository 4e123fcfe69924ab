package e2e

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// stdinOncePod reads its stdin to the end, then says so and stays.
const stdinOncePod = `apiVersion: v1
kind: Pod
metadata:
  name: once
spec:
  containers:
  - name: reader
    image: registry.k8s.io/busybox
    command: ["sh", "-c", "cat; echo stdin-closed; sleep 3600"]
    stdin: true
    stdinOnce: true
`

// TestStdinOnce checks stdinOnce with kubectl 1.32 (WebSocket v5, whose
// CLOSE signal carries the end of kubectl's input) and 1.27 (SPDY, a
// half-closed stream): the container's stdin is closed when the first
// attach that fed it ends, and `kubectl run -i --rm` and `kubectl run -it
// --rm`, which make such containers (the latter with a terminal, whose
// input is never closed), get their answers and remove the pod.
func TestStdinOnce(t *testing.T) {
	s := newServer(t)
	for _, v := range []string{"1.32", "1.27"} {
		t.Run("kubectl-"+v, func(t *testing.T) {
			ns := "stdin-" + strings.ReplaceAll(v, ".", "-")
			s.kubectl(v, "create", "namespace", ns)
			if out, err := s.kubectlStdin(v, stdinOncePod, "apply", "-n", ns, "-f", "-"); err != nil {
				t.Fatalf("apply: %v\n%s", err, out)
			}
			waitPod(t, s, v, ns, "once", "Running")
			t.Run("attach-i", func(t *testing.T) { attachStdinOnce(t, s, v, ns) })
			t.Run("run-i-rm", func(t *testing.T) { runInteractiveRemove(t, s, v, ns) })
			t.Run("run-it-rm", func(t *testing.T) { runTerminalRemove(t, s, v, ns) })
		})
	}
}

// attachStdinOnce pipes a line into the stdinOnce container with kubectl
// attach -i, whose input then ends: the container reads EOF while the
// session still runs. A second attach's input reaches nothing.
func attachStdinOnce(t *testing.T, s *server, v, ns string) {
	word := "hello-" + strings.ReplaceAll(v, ".", "-")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := s.kubectlCmd(ctx, v, "attach", "-i", "-n", ns, "once")
	cmd.Stdin = strings.NewReader(word + "\n")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if sc.Text() == "stdin-closed" {
			break
		}
	}
	// The container sleeps on: kubectl stays attached until it leaves.
	cancel()
	cmd.Wait()
	if strings.Join(lines, "\n") != word+"\nstdin-closed" {
		t.Fatalf("attached output %q, want %s then stdin-closed (the container's stdin was not closed when kubectl's input ended)\nstderr:\n%s",
			lines, word, stderr.String())
	}
	if logs := s.kubectl(v, "logs", "-n", ns, "once"); logs != word+"\nstdin-closed\n" {
		t.Fatalf("log %q", logs)
	}

	// Closed for good: a later attach's input is dropped.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	late := s.kubectlCmd(ctx2, v, "attach", "-i", "-n", ns, "once")
	late.Stdin = strings.NewReader("late\n")
	late.Run() // ends by the timeout: the container runs on
	if logs := s.kubectl(v, "logs", "-n", ns, "once"); strings.Contains(logs, "late") {
		t.Fatalf("a second attach's input reached the container:\n%s", logs)
	}
	if got := s.kubectl(v, "get", "pod", "-n", ns, "once", "-o", "jsonpath={.status.phase}"); got != "Running" {
		t.Fatalf("once is %s", got)
	}
}

// runInteractiveRemove runs `kubectl run -i --rm --restart=Never` with its
// input piped: the container gets the line and then the end of the input
// (it only ends after that), kubectl prints its answers, and the pod is
// deleted.
func runInteractiveRemove(t *testing.T, s *server, v, ns string) {
	word := "piped-" + strings.ReplaceAll(v, ".", "-")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := s.kubectlCmd(ctx, v, "run", "-i", "--rm", "--restart=Never", "-n", ns, "--image=registry.k8s.io/busybox",
		"asker", "--", "sh", "-c", "read x; echo got $x; cat; echo input-ended")
	cmd.Stdin = strings.NewReader(word + "\n")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl run -i --rm: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "got "+word+"\ninput-ended\n") {
		t.Fatalf("kubectl run -i --rm printed %q, want got %s and input-ended\nstderr:\n%s", stdout.String(), word, stderr.String())
	}
	eventually(t, 30*time.Second, func() error {
		if out, err := s.kubectlErr(v, "get", "pod", "-n", ns, "asker"); err == nil || !strings.Contains(out, "NotFound") {
			return fmt.Errorf("asker not removed: %v\n%s", err, out)
		}
		return nil
	})
}

// runTerminalRemove runs `kubectl run -it --rm` on a terminal: a shell on a
// tty with stdinOnce, which answers what is typed and ends with exit; the
// pod is deleted then.
func runTerminalRemove(t *testing.T, s *server, v, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	term := startOnTerminal(ctx, t, s, v, "run -it --rm --restart=Never -n "+ns+" --image=registry.k8s.io/busybox typist -- sh")
	term.waitFor("If you don't see a command prompt")
	term.write("echo typed-$((6*7))\r")
	term.waitFor("typed-42")
	term.write("exit\r")
	if err := term.wait(); err != nil {
		t.Fatalf("kubectl run -it --rm: %v\n%s", err, term.all.String())
	}
	eventually(t, 30*time.Second, func() error {
		if out, err := s.kubectlErr(v, "get", "pod", "-n", ns, "typist"); err == nil || !strings.Contains(out, "NotFound") {
			return fmt.Errorf("typist not removed: %v\n%s", err, out)
		}
		return nil
	})
}

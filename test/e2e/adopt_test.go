package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

const adoptPods = `
apiVersion: v1
kind: Pod
metadata: {name: terminal}
spec:
  containers:
  - name: c
    image: registry.k8s.io/busybox
    tty: true
    stdin: true
    command: ["sh", "-c", "i=0; while true; do echo term $i; i=$((i+1)); sleep 0.2; done"]
---
apiVersion: v1
kind: Pod
metadata: {name: ticker}
spec:
  containers:
  - name: c
    image: registry.k8s.io/busybox
    command: ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"]
---
apiVersion: v1
kind: Pod
metadata: {name: fails-while-down}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: registry.k8s.io/busybox
    command: ["sh", "-c", "sleep 4; exit 7"]
---
apiVersion: v1
kind: Pod
metadata: {name: succeeds-while-down}
spec:
  restartPolicy: OnFailure
  containers:
  - name: c
    image: registry.k8s.io/busybox
    command: ["sh", "-c", "sleep 4; exit 0"]
---
apiVersion: v1
kind: Pod
metadata: {name: fails-after-restart}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: registry.k8s.io/busybox
    command: ["sh", "-c", "sleep 14; exit 3"]
`

// TestAgentSIGKILL kills kedge (-9) under running pods, as a crash or a
// botched upgrade would, and restarts it: the containers keep running and
// are adopted (no restart counted, same container, logs without a gap),
// and the exit codes of containers that ended while kedge was down, or
// that end after it adopted them, are the real ones.
func TestAgentSIGKILL(t *testing.T) {
	s := newServer(t)
	const v = "1.32"
	s.kubectlStdin(v, adoptPods, "apply", "-f", "-")
	for _, p := range []string{"ticker", "terminal", "fails-while-down", "succeeds-while-down", "fails-after-restart"} {
		waitPod(t, s, v, "default", p, "Running")
	}
	tickerID := s.kubectl(v, "get", "pod", "ticker", "-o", "jsonpath={.status.containerStatuses[0].containerID}")
	// The pods started up to a second apart; the kill must come before
	// the first of the short ones ends.
	s.kill()
	killed := time.Now()
	time.Sleep(6 * time.Second) // both 4-second containers end meanwhile
	s.start()
	t.Logf("kedge was down for %v", time.Since(killed).Round(time.Millisecond))

	terminated := func(name string) (code, reason string, restarts string) {
		out := s.kubectl(v, "get", "pod", name, "-o",
			`jsonpath={.status.containerStatuses[0].state.terminated.exitCode} {.status.containerStatuses[0].state.terminated.reason} {.status.containerStatuses[0].restartCount}`)
		f := strings.Fields(out)
		for len(f) < 3 {
			f = append([]string{""}, f...)
		}
		return f[0], f[1], f[2]
	}
	waitPod(t, s, v, "default", "fails-while-down", "Error")
	if code, reason, restarts := terminated("fails-while-down"); code != "7" || reason != "Error" || restarts != "0" {
		t.Errorf("fails-while-down: exit %q reason %q restarts %q, want 7 Error 0", code, reason, restarts)
	}
	waitPod(t, s, v, "default", "succeeds-while-down", "Completed")
	if code, reason, restarts := terminated("succeeds-while-down"); code != "0" || reason != "Completed" || restarts != "0" {
		t.Errorf("succeeds-while-down: exit %q reason %q restarts %q, want 0 Completed 0 (an unknown code would restart it)", code, reason, restarts)
	}
	if phase := s.kubectl(v, "get", "pod", "succeeds-while-down", "-o", "jsonpath={.status.phase}"); phase != "Succeeded" {
		t.Errorf("succeeds-while-down phase %q", phase)
	}
	// Still running after the restart: adopted, then its end is recorded.
	if st := s.kubectl(v, "get", "pod", "fails-after-restart", "-o", "jsonpath={.status.phase}"); st != "Running" {
		t.Errorf("fails-after-restart is %s right after the restart, want Running", st)
	}
	waitPod(t, s, v, "default", "fails-after-restart", "Error")
	if code, reason, _ := terminated("fails-after-restart"); code != "3" || reason != "Error" {
		t.Errorf("fails-after-restart: exit %q reason %q, want 3 Error", code, reason)
	}

	// The ticker was never restarted and wrote on while kedge was down.
	if id := s.kubectl(v, "get", "pod", "ticker", "-o", "jsonpath={.status.containerStatuses[0].containerID}"); id != tickerID {
		t.Errorf("ticker's container changed across the restart: %s -> %s", tickerID, id)
	}
	if n := s.kubectl(v, "get", "pod", "ticker", "-o", "jsonpath={.status.containerStatuses[0].restartCount}"); n != "0" {
		t.Errorf("ticker restartCount %s, want 0", n)
	}
	// The TTY container kept its terminal (held by the exit recorder) and
	// its output reaches the log again.
	if n := s.kubectl(v, "get", "pod", "terminal", "-o", "jsonpath={.status.containerStatuses[0].restartCount} {.status.phase}"); n != "0 Running" {
		t.Errorf("terminal pod: restartCount and phase %q, want 0 Running", n)
	}
	termLines := strings.Count(s.kubectl(v, "logs", "terminal"), "\n")
	eventually(t, 10*time.Second, func() error {
		if n := strings.Count(s.kubectl(v, "logs", "terminal"), "\n"); n <= termLines {
			return fmt.Errorf("terminal pod's log stays at %d lines after the restart", n)
		}
		return nil
	})
	logs := s.kubectl(v, "logs", "ticker")
	want := 0
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		n, err := strconv.Atoi(strings.TrimPrefix(line, "tick "))
		if err != nil || n != want {
			t.Fatalf("ticker's log has a gap or stray line at %q (want tick %d):\n%s", line, want, logs)
		}
		want++
	}
	if want < 30 { // 0.2 s per tick over > 6 s
		t.Errorf("ticker logged only %d lines", want)
	}
}

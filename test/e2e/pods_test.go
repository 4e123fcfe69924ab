package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const printerPod = `apiVersion: v1
kind: Pod
metadata:
  name: printer
spec:
  restartPolicy: Never
  containers:
  - name: printer
    image: registry.k8s.io/busybox
    command: ["sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done; echo to-stderr >&2"]
`

const tickerPod = `apiVersion: v1
kind: Pod
metadata:
  name: ticker
spec:
  restartPolicy: Never
  containers:
  - name: ticker
    image: registry.k8s.io/busybox
    command: ["sh", "-c", "for i in 1 2 3 4 5 6; do echo tick $i; sleep 1; done"]
`

const crasherPod = `apiVersion: v1
kind: Pod
metadata:
  name: crasher
spec:
  restartPolicy: OnFailure
  containers:
  - name: c
    image: alpine
    command: ["sh", "-c", "echo crashing now; exit 3"]
`

// TestUserStory is issue 2's story, once with each kubectl at the ends of
// the supported range.
func TestUserStory(t *testing.T) {
	s := newServer(t)
	for _, v := range []string{"1.32", "1.27"} {
		t.Run("kubectl-"+v, func(t *testing.T) { userStory(t, s, v) })
	}
}

func userStory(t *testing.T, s *server, v string) {
	ns := "story-" + strings.ReplaceAll(v, ".", "-")
	s.kubectl(v, "create", "namespace", ns)
	if out := s.kubectl(v, "get", "namespaces"); !strings.Contains(out, ns) || !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "Active") {
		t.Fatalf("get namespaces:\n%s", out)
	}
	// The QoS demo pods from the seed manifests, applied unchanged except
	// for the namespace they name (qos-example, created for them).
	docs := seedDocs(t)
	qos := strings.Join(docs[:3], "---\n")
	if !strings.Contains(qos, "qos-demo-3") {
		t.Fatalf("seed manifests changed shape: first three documents are not the QoS pods")
	}
	qos = strings.ReplaceAll(qos, "namespace: qos-example", "namespace: "+ns)
	if out, err := s.kubectlStdin(v, qos, "apply", "-f", "-"); err != nil || strings.Contains(strings.ToLower(out), "warning") {
		t.Fatalf("apply QoS pods: %v\n%s", err, out)
	}
	if out, err := s.kubectlStdin(v, printerPod, "apply", "-n", ns, "-f", "-"); err != nil || strings.Contains(strings.ToLower(out), "warning") {
		t.Fatalf("apply printer pod: %v\n%s", err, out)
	}
	for pod, class := range map[string]string{"qos-demo": "Guaranteed", "qos-demo-2": "Burstable", "qos-demo-3": "BestEffort"} {
		if got := s.kubectl(v, "get", "pod", pod, "-n", ns, "-o", "jsonpath={.status.qosClass}"); got != class {
			t.Errorf("%s qosClass = %q, want %q", pod, got, class)
		}
		waitPod(t, s, v, ns, pod, "Running")
	}
	waitPod(t, s, v, ns, "printer", "Completed")

	out := s.kubectl(v, "get", "pods", "-n", ns)
	header := strings.Fields(strings.SplitN(out, "\n", 2)[0])
	if strings.Join(header, " ") != "NAME READY STATUS RESTARTS AGE" {
		t.Fatalf("get pods header = %v\n%s", header, out)
	}
	if !regexpLine(out, `qos-demo\s+1/1\s+Running\s+0\s+\S+`) || !regexpLine(out, `printer\s+0/1\s+Completed\s+0\s+\S+`) {
		t.Fatalf("get pods rows:\n%s", out)
	}
	wide := s.kubectl(v, "get", "pods", "-n", ns, "-o", "wide")
	if h := strings.Fields(strings.SplitN(wide, "\n", 2)[0]); len(h) < 7 || h[5] != "IP" || h[6] != "NODE" {
		t.Fatalf("get pods -o wide header:\n%s", wide)
	}
	ip := s.kubectl(v, "get", "pod", "qos-demo", "-n", ns, "-o", "jsonpath={.status.podIP}")
	if ip == "" || !strings.Contains(wide, ip) || !strings.Contains(wide, "e2e-node-") {
		t.Fatalf("wide output lacks IP %q or node:\n%s", ip, wide)
	}

	// A full object, with Kubernetes' defaults and status.
	var pod map[string]any
	if err := json.Unmarshal([]byte(s.kubectl(v, "get", "pod", "qos-demo", "-n", ns, "-o", "json")), &pod); err != nil {
		t.Fatal(err)
	}
	spec := pod["spec"].(map[string]any)
	if spec["restartPolicy"] != "Always" || spec["schedulerName"] != "default-scheduler" || spec["nodeName"] == nil {
		t.Errorf("spec lacks defaults or binding: %v", spec)
	}
	yml := s.kubectl(v, "get", "pod", "qos-demo", "-n", ns, "-o", "yaml")
	for _, want := range []string{"qosClass: Guaranteed", "phase: Running", "containerStatuses:", "resourceVersion:", "uid:", "creationTimestamp:", "startTime:"} {
		if !strings.Contains(yml, want) {
			t.Errorf("-o yaml lacks %q", want)
		}
	}

	// Logs: plain, and follow until the container ends.
	logs := s.kubectl(v, "logs", "printer", "-n", ns)
	for i := 1; i <= 5; i++ {
		if !strings.Contains(logs, fmt.Sprintf("line %d", i)) {
			t.Fatalf("logs lack line %d:\n%s", i, logs)
		}
	}
	if !strings.Contains(logs, "to-stderr") {
		t.Errorf("logs lack stderr output:\n%s", logs)
	}
	if out := s.kubectl(v, "logs", "printer", "-n", ns, "--tail=2"); strings.Count(strings.TrimSpace(out), "\n") != 1 {
		t.Errorf("logs --tail=2 gave:\n%s", out)
	}
	if out := s.kubectl(v, "logs", "printer", "-n", ns, "--timestamps"); !regexpLine(out, `^\d{4}-\d\d-\d\dT\S+Z line 1$`) {
		t.Errorf("logs --timestamps gave:\n%s", out)
	}
	if _, err := s.kubectlStdin(v, tickerPod, "apply", "-n", ns, "-f", "-"); err != nil {
		t.Fatal(err)
	}
	waitPod(t, s, v, ns, "ticker", "Running")
	start := time.Now()
	follow := s.kubectl(v, "logs", "-f", "ticker", "-n", ns)
	if !strings.Contains(follow, "tick 1") || !strings.Contains(follow, "tick 6") {
		t.Fatalf("logs -f did not follow to the end:\n%s", follow)
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("logs -f took %v: it should end when the container exits", time.Since(start))
	}

	// A container that fails is restarted with back-off; --previous shows
	// the log of the run before.
	if _, err := s.kubectlStdin(v, crasherPod, "apply", "-n", ns, "-f", "-"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() error {
		out, err := s.kubectlErr(v, "get", "pod", "crasher", "-n", ns, "-o", "jsonpath={.status.containerStatuses[0].restartCount}")
		if err != nil || out == "" || out == "0" {
			return fmt.Errorf("restartCount %q (%v)", out, err)
		}
		return nil
	})
	if out := s.kubectl(v, "logs", "crasher", "-n", ns, "--previous"); !strings.Contains(out, "crashing now") {
		t.Errorf("logs --previous:\n%s", out)
	}
	eventually(t, 60*time.Second, func() error {
		out := s.kubectl(v, "get", "pod", "crasher", "-n", ns, "--no-headers")
		if !strings.Contains(out, "CrashLoopBackOff") && !strings.Contains(out, "Error") {
			return fmt.Errorf("crasher is %q, want CrashLoopBackOff or Error between restarts", out)
		}
		return nil
	})

	// kubectl explain reads the server's OpenAPI documents.
	if out := s.kubectl(v, "explain", "pod.spec.containers.resources"); !strings.Contains(out, "limits") || !strings.Contains(out, "requests") {
		t.Errorf("explain:\n%s", out)
	}

	// describe shows the pod and its events.
	desc := s.kubectl(v, "describe", "pod", "qos-demo", "-n", ns)
	for _, want := range []string{"QoS Class:", "Guaranteed", "Events:", "Started", "Scheduled"} {
		if !strings.Contains(desc, want) {
			t.Errorf("describe lacks %q:\n%s", want, desc)
		}
	}

	// Deleting a pod stops it and leaves nothing behind.
	uid := s.kubectl(v, "get", "pod", "qos-demo-3", "-n", ns, "-o", "jsonpath={.metadata.uid}")
	s.kubectl(v, "delete", "pod", "qos-demo-3", "-n", ns, "--timeout=60s")
	if out, err := s.kubectlErr(v, "get", "pod", "qos-demo-3", "-n", ns); err == nil || !strings.Contains(out, "NotFound") {
		t.Fatalf("pod still there after delete: %v\n%s", err, out)
	}
	assertNothingLeft(t, s, uid)

	nodes := s.kubectl(v, "get", "nodes")
	if !regexpLine(nodes, `e2e-node-\d+\s+Ready\s+control-plane\s+\S+\s+v\S+`) {
		t.Fatalf("get nodes:\n%s", nodes)
	}
	s.kubectl(v, "delete", "namespace", ns, "--timeout=120s")
}

// waitPod waits until kubectl's STATUS column for the pod shows want.
func waitPod(t *testing.T, s *server, v, ns, name, want string) {
	t.Helper()
	eventually(t, 90*time.Second, func() error {
		out, err := s.kubectlErr(v, "get", "pod", name, "-n", ns, "--no-headers")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if f := strings.Fields(out); len(f) < 3 || f[2] != want {
			return fmt.Errorf("pod %s is %q, want %s", name, strings.TrimSpace(out), want)
		}
		return nil
	})
}

// assertNothingLeft checks that no mount, cgroup, process or namespace of
// the pod remains on the host.
func assertNothingLeft(t *testing.T, s *server, uid string) {
	t.Helper()
	if uid == "" {
		t.Fatal("empty pod uid")
	}
	eventually(t, 30*time.Second, func() error {
		mi, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return err
		}
		if strings.Contains(string(mi), uid) {
			return fmt.Errorf("a mount of pod %s remains", uid)
		}
		var left []string
		filepath.WalkDir("/sys/fs/cgroup", func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && strings.Contains(d.Name(), uid) {
				left = append(left, p)
				return filepath.SkipDir
			}
			if err == nil && d.IsDir() && strings.Count(p, "/") > 7 {
				return filepath.SkipDir
			}
			return nil
		})
		if len(left) > 0 {
			return fmt.Errorf("cgroup dirs remain: %v", left)
		}
		if out, _ := exec.Command("sh", "-c", "grep -l "+uid+" /proc/[0-9]*/cgroup 2>/dev/null").Output(); len(out) > 0 {
			return fmt.Errorf("processes of the pod remain: %s", out)
		}
		var files []string
		filepath.WalkDir(s.runDir, func(p string, d os.DirEntry, err error) error {
			if err == nil && strings.Contains(p, uid) {
				files = append(files, p)
			}
			return nil
		})
		if len(files) > 0 {
			return fmt.Errorf("run-dir entries remain: %v", files)
		}
		return nil
	})
}

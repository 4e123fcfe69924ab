package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// securityPods are one pod per behaviour; each prints what it observed and
// sleeps (or ends), so the test reads its log.
const securityPods = `
apiVersion: v1
kind: Pod
metadata: {name: user}
spec:
  securityContext: {runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000, supplementalGroups: [4000]}
  volumes: [{name: data, emptyDir: {}}]
  containers:
  - name: c
    image: registry.k8s.io/busybox
    command: [sh, -c, 'id; touch /data/f && stat -c "data-group=%g" /data/f; sleep 3600']
    volumeMounts: [{name: data, mountPath: /data}]
---
apiVersion: v1
kind: Pod
metadata: {name: rofs}
spec:
  containers:
  - name: c
    image: registry.k8s.io/busybox
    command: [sh, -c, 'touch /x 2>/dev/null || echo rofs-blocked; touch /tmp/x 2>/dev/null || echo tmp-blocked; sleep 3600']
    securityContext: {readOnlyRootFilesystem: true}
---
apiVersion: v1
kind: Pod
metadata: {name: caps}
spec:
  containers:
  - name: dropped
    image: registry.k8s.io/busybox
    command: [sh, -c, 'chown 1 /tmp 2>/dev/null && echo chown-allowed || echo chown-blocked; sleep 3600']
    securityContext: {capabilities: {drop: [CHOWN]}}
  - name: default
    image: registry.k8s.io/busybox
    command: [sh, -c, 'chown 1 /tmp 2>/dev/null && echo chown-allowed || echo chown-blocked; grep NoNewPrivs /proc/self/status; sleep 3600']
    securityContext: {allowPrivilegeEscalation: false}
---
apiVersion: v1
kind: Pod
metadata: {name: privileged}
spec:
  containers:
  - name: priv
    image: registry.k8s.io/busybox
    command: [sh, -c, 'test -c /dev/kmsg && echo sees-kmsg || echo no-kmsg; sleep 3600']
    securityContext: {privileged: true}
  - name: plain
    image: registry.k8s.io/busybox
    command: [sh, -c, 'test -c /dev/kmsg && echo sees-kmsg || echo no-kmsg; sleep 3600']
---
apiVersion: v1
kind: Pod
metadata: {name: seccomp}
spec:
  securityContext: {seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: default
    image: registry.k8s.io/busybox
    command: [sh, -c, 'unshare -U true && echo unshare-allowed || echo unshare-blocked; sleep 3600']
  - name: unconfined
    image: registry.k8s.io/busybox
    command: [sh, -c, 'unshare -U true && echo unshare-allowed || echo unshare-blocked; sleep 3600']
    securityContext: {seccompProfile: {type: Unconfined}}
---
apiVersion: v1
kind: Pod
metadata: {name: nonroot}
spec:
  containers:
  - name: c
    image: registry.k8s.io/busybox
    command: [sleep, "3600"]
    securityContext: {runAsNonRoot: true}
---
apiVersion: v1
kind: Pod
metadata: {name: oom}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: registry.k8s.io/busybox
    command: [sh, -c, 'head -c 64m /dev/zero | tail']
    resources: {limits: {memory: 20Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: hostnet}
spec:
  hostNetwork: true
  containers:
  - name: c
    image: registry.k8s.io/busybox
    command: [sh, -c, 'cat /proc/net/dev; hostname; sleep 3600']
---
apiVersion: v1
kind: Pod
metadata: {name: guaranteed}
spec:
  containers:
  - name: c
    image: registry.k8s.io/busybox
    command: [sh, -c, 'echo oom=$(cat /proc/self/oom_score_adj); sleep 3600']
    resources: {limits: {cpu: 250m, memory: 64Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: burstable}
spec:
  containers:
  - name: c
    image: registry.k8s.io/busybox
    command: [sh, -c, 'echo oom=$(cat /proc/self/oom_score_adj); sleep 3600']
    resources: {requests: {cpu: 100m}}
---
apiVersion: v1
kind: Pod
metadata: {name: besteffort}
spec:
  containers:
  - name: c
    image: registry.k8s.io/busybox
    command: [sh, -c, 'echo oom=$(cat /proc/self/oom_score_adj); sleep 3600']
`

// TestSecurityAndResources checks securityContext, seccomp, OOMKilled,
// hostNetwork and the QoS cgroup hierarchy end to end with kubectl 1.32.
func TestSecurityAndResources(t *testing.T) {
	s := newServer(t)
	const v = "1.32"
	if out, err := s.kubectlStdin(v, securityPods, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	logsHave := func(pod, container string, want ...string) {
		t.Helper()
		eventually(t, 60*time.Second, func() error {
			out, err := s.kubectlErr(v, "logs", pod, "-c", container)
			if err != nil {
				return fmt.Errorf("logs %s/%s: %v: %s", pod, container, err, out)
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					return fmt.Errorf("logs of %s/%s lack %q:\n%s", pod, container, w, out)
				}
			}
			return nil
		})
	}
	jsonpath := func(pod, path string) string {
		return s.kubectl(v, "get", "pod", pod, "-o", "jsonpath="+path)
	}

	t.Run("runAsUser, runAsGroup, fsGroup", func(t *testing.T) {
		logsHave("user", "c", "uid=1000 gid=3000", "2000", "4000", "data-group=2000")
	})
	t.Run("readOnlyRootFilesystem", func(t *testing.T) {
		logsHave("rofs", "c", "rofs-blocked", "tmp-blocked")
	})
	t.Run("capabilities and allowPrivilegeEscalation", func(t *testing.T) {
		logsHave("caps", "dropped", "chown-blocked")
		logsHave("caps", "default", "chown-allowed", "NoNewPrivs:\t1")
	})
	t.Run("privileged", func(t *testing.T) {
		if _, err := os.Stat("/dev/kmsg"); err != nil {
			t.Fatalf("the host has no /dev/kmsg to look for: %v", err)
		}
		logsHave("privileged", "priv", "sees-kmsg")
		logsHave("privileged", "plain", "no-kmsg")
	})
	t.Run("seccomp RuntimeDefault and Unconfined", func(t *testing.T) {
		logsHave("seccomp", "default", "unshare-blocked")
		logsHave("seccomp", "unconfined", "unshare-allowed")
	})
	t.Run("runAsNonRoot with a root image", func(t *testing.T) {
		eventually(t, 60*time.Second, func() error {
			reason := jsonpath("nonroot", "{.status.containerStatuses[0].state.waiting.reason}")
			msg := jsonpath("nonroot", "{.status.containerStatuses[0].state.waiting.message}")
			if reason != "CreateContainerConfigError" || !strings.Contains(msg, "container has runAsNonRoot and image will run as root") {
				return fmt.Errorf("waiting %q %q", reason, msg)
			}
			return nil
		})
	})
	t.Run("OOMKilled", func(t *testing.T) {
		eventually(t, 90*time.Second, func() error {
			got := jsonpath("oom", "{.status.containerStatuses[0].state.terminated.reason} {.status.containerStatuses[0].state.terminated.exitCode}")
			if got != "OOMKilled 137" {
				return fmt.Errorf("terminated state %q", got)
			}
			return nil
		})
	})
	t.Run("hostNetwork", func(t *testing.T) {
		host, _ := os.Hostname()
		logsHave("hostnet", "c", s.bridge+":", host)
		if ip, hostIP := jsonpath("hostnet", "{.status.podIP}"), jsonpath("hostnet", "{.status.hostIP}"); ip == "" || ip != hostIP {
			t.Errorf("podIP %q, hostIP %q: want the host's address", ip, hostIP)
		}
	})
	t.Run("QoS cgroups and oom_score_adj", func(t *testing.T) {
		root := s.cgroupRoot()
		logsHave("guaranteed", "c", fmt.Sprintf("oom=%d", guaranteedOOMScore(t)))
		logsHave("besteffort", "c", "oom=1000")
		logsHave("burstable", "c", "oom=999")
		uid := func(pod string) string { return jsonpath(pod, "{.metadata.uid}") }
		files := map[string]string{
			"cpu/kubepods/pod" + uid("guaranteed") + "/cpu.shares":                          "256",
			"cpu/kubepods/pod" + uid("guaranteed") + "/cpu.cfs_quota_us":                    "25000",
			"memory/kubepods/pod" + uid("guaranteed") + "/memory.limit_in_bytes":            fmt.Sprint(64 << 20),
			"pids/kubepods/pod" + uid("guaranteed") + "/pids.max":                           "4096",
			"cpu/kubepods/burstable/pod" + uid("burstable") + "/cpu.shares":                 "102",
			"cpu/kubepods/burstable/pod" + uid("burstable") + "/cpu.cfs_quota_us":           "-1",
			"cpu/kubepods/besteffort/pod" + uid("besteffort") + "/cpu.shares":               "2",
			"cpu/kubepods/besteffort/cpu.shares":                                            "2",
			"memory/kubepods/besteffort/pod" + uid("besteffort") + "/memory.limit_in_bytes": "9223372036854771712",
		}
		for f, want := range files {
			p := filepath.Join("/sys/fs/cgroup", strings.SplitN(f, "/", 2)[0], root, strings.SplitN(f, "/", 2)[1])
			b, err := os.ReadFile(p)
			if err != nil || strings.TrimSpace(string(b)) != want {
				t.Errorf("%s = %q (%v), want %s", p, strings.TrimSpace(string(b)), err, want)
			}
		}
		// The container's own cgroup sits below its pod's, with its limits.
		leaves, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/memory", root, "kubepods/pod"+uid("guaranteed"), "*", "memory.limit_in_bytes"))
		if len(leaves) != 1 {
			t.Fatalf("container cgroups under the guaranteed pod: %v", leaves)
		}
		if b, _ := os.ReadFile(leaves[0]); strings.TrimSpace(string(b)) != fmt.Sprint(64<<20) {
			t.Errorf("container memory limit %q", b)
		}
		// Deleting the pod removes its cgroup.
		s.kubectl(v, "delete", "pod", "guaranteed", "--grace-period=1")
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", root, "kubepods/pod"+uid("burstable"))); err == nil {
			t.Error("burstable path exists under kubepods/ directly")
		}
		eventually(t, 30*time.Second, func() error {
			matches, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/cpu", root, "kubepods", "pod*"))
			if len(matches) != 0 {
				return fmt.Errorf("pod cgroups left: %v", matches)
			}
			return nil
		})

		// The burstable QoS cgroup's cpu.shares is the sum of the cpu
		// requests of the running Burstable pods (as the API reports
		// them), converted like a container's, as pods come and go.
		sharesFile := filepath.Join("/sys/fs/cgroup/cpu", root, "kubepods/burstable/cpu.shares")
		burstableShares := func(want int64) {
			t.Helper()
			eventually(t, 30*time.Second, func() error {
				pods := s.kubectl(v, "get", "pods", "-o",
					`jsonpath={range .items[*]}{.status.qosClass} {.status.phase} {.spec.containers[*].resources.requests.cpu}{"\n"}{end}`)
				var milli int64
				for _, l := range strings.Split(strings.TrimSpace(pods), "\n") {
					if f := strings.Fields(l); len(f) > 2 && f[0] == "Burstable" && f[1] == "Running" {
						for _, q := range f[2:] {
							qty := resource.MustParse(q)
							milli += qty.MilliValue()
						}
					}
				}
				fromAPI := max(milli*1024/1000, 2)
				b, err := os.ReadFile(sharesFile)
				if got := strings.TrimSpace(string(b)); err != nil || got != fmt.Sprint(fromAPI) || fromAPI != want {
					return fmt.Errorf("%s = %q (%v); from the running Burstable pods %d, want %d\n%s", sharesFile, got, err, fromAPI, want, pods)
				}
				return nil
			})
		}
		burstableShares(102) // burstable: 100m
		const second = `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "burstable2"}, "spec": {"containers": [
  {"name": "a", "image": "registry.k8s.io/busybox", "command": ["sleep", "3600"], "resources": {"requests": {"cpu": "250m"}}},
  {"name": "b", "image": "registry.k8s.io/busybox", "command": ["sleep", "3600"], "resources": {"requests": {"cpu": "50m", "memory": "16Mi"}}}]}}`
		if out, err := s.kubectlStdin(v, second, "apply", "-f", "-"); err != nil {
			t.Fatalf("apply: %v\n%s", err, out)
		}
		burstableShares(409) // 100m + 250m + 50m
		s.kubectl(v, "delete", "pod", "burstable2", "--grace-period=1")
		burstableShares(102)
	})
}

// TestLogRotation runs a chatty pod with a 2 KiB rotation size: the log
// directory keeps at most 3 files, and `kubectl logs -f` started before the
// rotations prints every line once, in order.
func TestLogRotation(t *testing.T) {
	s := newServer(t)
	s.stop()
	s.args = append(s.args, "--container-log-max-size", "2Ki", "--container-log-max-files", "3")
	s.start()
	const v = "1.32"
	pod := `
apiVersion: v1
kind: Pod
metadata: {name: chatty}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: registry.k8s.io/busybox
    command: [sh, -c, 'sleep 2; i=1; while [ $i -le 300 ]; do echo "line $i of the chatty container"; i=$((i+1)); sleep 0.02; done; sleep 2']
`
	if out, err := s.kubectlStdin(v, pod, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	eventually(t, 60*time.Second, func() error {
		if phase := s.kubectl(v, "get", "pod", "chatty", "-o", "jsonpath={.status.phase}"); phase != "Running" {
			return fmt.Errorf("phase %q", phase)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectlPath(v), "--kubeconfig", s.kubecfg, "logs", "-f", "chatty")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var got []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		got = append(got, sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("kubectl logs -f: %v", err)
	}
	if len(got) != 300 {
		t.Fatalf("kubectl logs -f printed %d lines, want 300; first %q last %q", len(got), first(got), last(got))
	}
	for i, l := range got {
		if want := fmt.Sprintf("line %d of the chatty container", i+1); l != want {
			t.Fatalf("line %d = %q, want %q", i+1, l, want)
		}
	}
	uid := s.kubectl(v, "get", "pod", "chatty", "-o", "jsonpath={.metadata.uid}")
	files, _ := filepath.Glob(filepath.Join(s.dataDir, "logs", "pods", "default_chatty_"+uid, "c", "*"))
	if len(files) < 2 || len(files) > 3 {
		t.Errorf("log files %v: want the log rotated and at most 3 files kept", files)
	}
	// The current file holds the end; --tail, --timestamps and --since read it.
	if tail := s.kubectl(v, "logs", "chatty", "--tail=1"); strings.TrimSpace(tail) != "line 300 of the chatty container" {
		t.Errorf("--tail=1: %q", tail)
	}
	if ts := s.kubectl(v, "logs", "chatty", "--tail=1", "--timestamps"); !regexpLine(ts, `^\d{4}-\d\d-\d\dT[0-9:.]+Z line 300 of the chatty container$`) {
		t.Errorf("--timestamps: %q", ts)
	}
	if since := s.kubectl(v, "logs", "chatty", "--since=1h"); !strings.Contains(since, "line 300 of") {
		t.Errorf("--since=1h: %q", since)
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// guaranteedOOMScore is what a Guaranteed container gets: -997, or the
// server's own oom_score_adj when it lacks CAP_SYS_RESOURCE (as on a test
// machine that runs inside a container) and so cannot go lower.
func guaranteedOOMScore(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:\t"); ok {
			var bits uint64
			fmt.Sscanf(v, "%x", &bits)
			if bits&(1<<24) != 0 { // CAP_SYS_RESOURCE
				return -997
			}
		}
	}
	own, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		t.Fatal(err)
	}
	var v int
	fmt.Sscanf(strings.TrimSpace(string(own)), "%d", &v)
	return max(v, -997)
}

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkFoundation prints the figures issue 2 asks for. They are
// reported, not asserted: `make bench` shows them with the command used.
func BenchmarkFoundation(b *testing.B) {
	bin := binPath(b)
	b.Logf("command: make bench (go test -run '^$' -bench Foundation -benchtime 1x ./test/e2e)")
	for _, name := range []string{"kedge", "kedge-arm64", "kedge-armv7"} {
		p := filepath.Join(filepath.Dir(bin), name)
		if st, err := os.Stat(p); err == nil {
			b.Logf("binary size %-12s %6.1f MiB (%d bytes)", name, float64(st.Size())/(1<<20), st.Size())
			b.ReportMetric(float64(st.Size())/(1<<20), name+"-MiB")
		} else {
			b.Logf("binary size %-12s missing (%v)", name, err)
		}
	}
	s := newServerFrom(b, installBinary(b, bin)) // as on a node (installBinary)
	idle := 60 * time.Second
	if d, err := time.ParseDuration(os.Getenv("KEDGE_BENCH_IDLE")); err == nil {
		idle = d
	}
	time.Sleep(idle)
	rss0 := rssMiB(b, s.cmd.Process.Pid)
	b.Logf("idle RSS of kedge server after %v, no pods: %.1f MiB", idle, rss0)
	b.ReportMetric(rss0, "idle-RSS-MiB")

	s.kubectl("1.32", "create", "namespace", "bench")
	var lat []time.Duration
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("lat-%d", i)
		start := time.Now()
		if out, err := s.kubectlStdin("1.32", sleepPod(name), "apply", "-n", "bench", "-f", "-"); err != nil {
			b.Fatalf("apply: %v %s", err, out)
		}
		waitRunning(b, s, "bench", name)
		lat = append(lat, time.Since(start))
		if i >= 10 {
			s.kubectl("1.32", "delete", "pod", name, "-n", "bench", "--wait=false")
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	b.Logf("kubectl apply -> Running (image imported), n=20: median %v, p99 %v (includes kubectl's own start, ~%v)", p50.Round(time.Millisecond), p99.Round(time.Millisecond), kubectlStart(b, s).Round(time.Millisecond))
	b.ReportMetric(float64(p50.Milliseconds()), "apply-to-running-p50-ms")
	b.ReportMetric(float64(p99.Milliseconds()), "apply-to-running-p99-ms")

	// Ten pods stay running (lat-0..lat-9); let things settle and measure.
	eventually(b, 2*time.Minute, func() error {
		out := s.kubectl("1.32", "get", "pods", "-n", "bench", "--no-headers")
		if n := strings.Count(out, "Running"); n != 10 || strings.Count(strings.TrimSpace(out), "\n") != 9 {
			return fmt.Errorf("want exactly 10 running pods:\n%s", out)
		}
		return nil
	})
	time.Sleep(idle)
	rss10 := rssMiB(b, s.cmd.Process.Pid)
	b.Logf("RSS of kedge server after %v with 10 running busybox pods: %.1f MiB", idle, rss10)
	b.ReportMetric(rss10, "10-pods-RSS-MiB")
}

func sleepPod(name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: registry.k8s.io/busybox
    command: ["sleep", "3600"]
`, name)
}

// waitRunning polls the pod's phase with kubectl until Running.
func waitRunning(b testing.TB, s *server, ns, name string) {
	b.Helper()
	eventually(b, 60*time.Second, func() error {
		out, err := s.kubectlErr("1.32", "get", "pod", name, "-n", ns, "-o", "jsonpath={.status.phase}")
		if err != nil || out != "Running" {
			return fmt.Errorf("phase %q (%v)", out, err)
		}
		return nil
	})
}

// kubectlStart measures one trivial kubectl call, to read the latency
// figures against.
func kubectlStart(b testing.TB, s *server) time.Duration {
	start := time.Now()
	s.kubectl("1.32", "get", "ns", "default", "-o", "name")
	return time.Since(start)
}

// rssAnonMiB reads RssAnon of pid from /proc: the anonymous part of VmRSS.
func rssAnonMiB(b testing.TB, pid int) float64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("read status: %v", err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "RssAnon:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Fatalf("no RssAnon in /proc/%d/status", pid)
	return 0
}

// rssMiB reads VmRSS of pid from /proc.
func rssMiB(b testing.TB, pid int) float64 {
	b.Helper()
	out, err := exec.Command("grep", "VmRSS", fmt.Sprintf("/proc/%d/status", pid)).Output()
	if err != nil {
		b.Fatalf("read RSS: %v", err)
	}
	f := strings.Fields(string(out))
	kb, _ := strconv.ParseFloat(f[1], 64)
	return kb / 1024
}

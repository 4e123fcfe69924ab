package runtime_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"kedge.dev/kedge/runtime"
	"kedge.dev/kedge/runtime/seccomp"
)

// runOutput runs a busybox shell script in a container with sec and
// returns its exit status and output.
func (e *env) runOutput(t *testing.T, id string, sec runtime.Security, script string) (runtime.ContainerStatus, string) {
	t.Helper()
	spec := e.spec(id, "sh", "-c", script)
	spec.Security = sec
	e.run(t, spec)
	st := e.waitExited(t, id, 20*time.Second)
	return st, logContent(t, spec.LogPath)
}

// ownCapBnd is this process's bounding set line value: what a privileged
// container gets.
func ownCapBnd(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:\t"); ok {
			return v
		}
	}
	t.Fatal("no CapBnd in /proc/self/status")
	return ""
}

func TestSecurityContextApplied(t *testing.T) {
	e := newEnv(t)
	i64 := func(v int64) *int64 { return &v }
	oom := 500
	tests := []struct {
		name   string
		sec    runtime.Security
		script string
		want   []string
	}{
		{"user, group, supplemental groups", runtime.Security{RunAsUser: i64(1234), RunAsGroup: i64(5678), SupplementalGroups: []int64{42, 43}},
			"id", []string{"uid=1234 gid=5678 groups=42,43"}},
		{"user from passwd keeps its group", runtime.Security{RunAsUser: i64(65534)}, "id -u; id -g", []string{"65534\n65534"}},
		{"read-only root filesystem", runtime.Security{ReadOnlyRootfs: true},
			"touch /x 2>/dev/null || echo rofs; touch /dev/shm/x && echo shm-ok", []string{"rofs", "shm-ok"}},
		{"drop CHOWN", runtime.Security{CapDrop: []string{"CHOWN"}},
			"chown 1 /tmp 2>/dev/null || echo chown-denied", []string{"chown-denied"}},
		{"default can chown", runtime.Security{}, "chown 1 /tmp && echo chown-ok", []string{"chown-ok"}},
		{"drop ALL add NET_BIND_SERVICE", runtime.Security{CapDrop: []string{"ALL"}, CapAdd: []string{"NET_BIND_SERVICE"}},
			"grep CapBnd /proc/self/status", []string{"CapBnd:\t0000000000000400"}},
		{"no_new_privs and oom_score_adj", runtime.Security{NoNewPrivileges: true, OOMScoreAdj: &oom},
			"grep NoNewPrivs /proc/self/status; cat /proc/self/oom_score_adj", []string{"NoNewPrivs:\t1", "\n500"}},
		{"privileged", runtime.Security{Privileged: true},
			"grep CapEff /proc/self/status; test -c /dev/kmsg && echo kmsg; touch /sys/kernel/x 2>&1 | grep -q Read-only || echo sys-rw; wc -c </proc/timer_list",
			[]string{"CapEff:\t" + ownCapBnd(t), "kmsg", "sys-rw"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, out := e.runOutput(t, "sec"+string(rune('a'+i)), tc.sec, tc.script)
			if st.ExitCode != 0 {
				t.Fatalf("status %+v, output %q", st, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output %q lacks %q", out, w)
				}
			}
		})
	}
}

func TestRunAsNonRoot(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	spec := e.spec("nonroot", "true")
	spec.Security.RunAsNonRoot = true
	if err := e.rt.CreateContainer(ctx, spec); !errors.Is(err, runtime.ErrRunAsNonRoot) {
		t.Fatalf("image user root with runAsNonRoot: err = %v", err)
	}
	uid := int64(1000)
	spec.Security.RunAsUser = &uid
	if err := e.rt.CreateContainer(ctx, spec); err != nil {
		t.Fatalf("runAsUser 1000 with runAsNonRoot: %v", err)
	}
	spec.ID, spec.Security.CapAdd = "badcap", []string{"FLY"}
	if err := e.rt.CreateContainer(ctx, spec); !errors.Is(err, runtime.ErrInvalidSpec) {
		t.Fatalf("unknown capability: err = %v", err)
	}
}

// TestSeccompRuntimeDefault: unshare(CLONE_NEWUSER) needs no capability,
// so only the filter stops it.
func TestSeccompRuntimeDefault(t *testing.T) {
	if !seccomp.Supported() {
		t.Skip("SKIPPED LOUDLY: this test binary was built without seccomp support; run with -tags seccomp (make unit does)")
	}
	e := newEnv(t)
	script := "unshare -U true && echo unshare-ok || echo unshare-denied"
	_, out := e.runOutput(t, "unconfined", runtime.Security{Seccomp: runtime.SeccompUnconfined}, script)
	if !strings.Contains(out, "unshare-ok") {
		t.Fatalf("Unconfined: %q", out)
	}
	_, out = e.runOutput(t, "default", runtime.Security{Seccomp: runtime.SeccompRuntimeDefault}, script+"; grep Seccomp: /proc/self/status")
	if !strings.Contains(out, "unshare-denied") || !strings.Contains(out, "Seccomp:\t2") {
		t.Fatalf("RuntimeDefault: %q", out)
	}
	_, out = e.runOutput(t, "admin", runtime.Security{Seccomp: runtime.SeccompRuntimeDefault, CapAdd: []string{"SYS_ADMIN"}},
		"mkdir /m && mount -t tmpfs t /m && echo mount-ok")
	if !strings.Contains(out, "mount-ok") {
		t.Fatalf("RuntimeDefault with CAP_SYS_ADMIN: %q", out)
	}
}

func TestEnsureAndRemoveCgroup(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pod := e.cgroupRoot + "/kubepods/burstable/podx"
	res := runtime.Resources{CPUShares: 300, CPUQuota: 50000, CPUPeriod: 100000, MemoryLimit: 100 << 20, PidsLimit: 64}
	for range 2 { // idempotent
		if err := e.rt.EnsureCgroup(ctx, pod, res); err != nil {
			t.Fatal(err)
		}
	}
	for file, want := range map[string]string{
		"/sys/fs/cgroup/cpu" + pod + "/cpu.shares":               "300",
		"/sys/fs/cgroup/cpu" + pod + "/cpu.cfs_quota_us":         "50000",
		"/sys/fs/cgroup/memory" + pod + "/memory.limit_in_bytes": "104857600",
		"/sys/fs/cgroup/pids" + pod + "/pids.max":                "64",
	} {
		if b, err := os.ReadFile(file); err != nil || strings.TrimSpace(string(b)) != want {
			t.Errorf("%s = %q, %v; want %s", file, b, err, want)
		}
	}
	spec := e.spec("inpod", "sleep", "100")
	spec.CgroupParent = pod
	e.run(t, spec)
	if err := e.rt.RemoveCgroup(ctx, pod); !errors.Is(err, runtime.ErrInvalidState) {
		t.Fatalf("removing a busy pod cgroup: err = %v", err)
	}
	if err := e.rt.RemoveContainer(ctx, "inpod"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory" + pod); err != nil {
		t.Fatalf("removing the container removed the pod cgroup: %v", err)
	}
	for range 2 {
		if err := e.rt.RemoveCgroup(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{pod, e.cgroupRoot + "/kubepods/burstable", e.cgroupRoot + "/kubepods", e.cgroupRoot} {
		if err := e.rt.RemoveCgroup(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStats(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	spec := e.spec("stats", "sh", "-c", "head -c 3000000 /dev/urandom >/big; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo ready; sleep 100")
	e.run(t, spec)
	waitLog(t, spec.LogPath, "ready")
	st, err := e.rt.Stats(ctx, "stats")
	if err != nil {
		t.Fatal(err)
	}
	if st.CPUUsageNanos == 0 || st.MemoryUsageBytes == 0 || st.MemoryWorkingSetBytes == 0 || st.MemoryWorkingSetBytes > st.MemoryUsageBytes {
		t.Errorf("cgroup figures %+v", st)
	}
	if st.RootfsUsedBytes < 3000000 || st.RootfsInodesUsed == 0 {
		t.Errorf("rootfs usage %d bytes %d inodes, want ≥ 3 MB", st.RootfsUsedBytes, st.RootfsInodesUsed)
	}
	if err := e.rt.StopContainer(ctx, "stats", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.Stats(ctx, "stats"); !errors.Is(err, runtime.ErrInvalidState) {
		t.Errorf("stats of an exited container: %v", err)
	}
}

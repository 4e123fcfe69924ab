package runtime_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"kedge.dev/kedge/runtime"
	"kedge.dev/kedge/runtime/exitrec"
	"kedge.dev/kedge/runtime/logs"
	"kedge.dev/kedge/test/images/imagebuild"
)

// The test binary is re-executed as the container init, like cmd/kedge.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		runtime.ContainerInit()
	}
	// ... and as the exit recorder (runtime.Config.ExitRecorder).
	if len(os.Args) == 3 && os.Args[1] == "exit-recorder" {
		if err := exitrec.RunProcess(context.Background(), os.Args[2], exitrec.RecorderConfig{IdleCheck: 200 * time.Millisecond}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}

type env struct {
	rt         *runtime.Runtime
	cfg        runtime.Config
	dir        string
	cgroupRoot string
}

// newEnv starts a Runtime in a temporary root with its own cgroup root and
// the busybox shell image imported.
func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("runtime tests run containers and need root")
	}
	dir := t.TempDir()
	cgroupRoot := fmt.Sprintf("/kedge-test-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	cfg := runtime.Config{
		Root:       filepath.Join(dir, "root"),
		StateDir:   filepath.Join(dir, "state"),
		CgroupRoot: cgroupRoot,
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	rt, err := runtime.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{rt: rt, cfg: cfg, dir: dir, cgroupRoot: cgroupRoot}
	t.Cleanup(func() {
		ctx := context.Background()
		if _, err := e.rt.ListContainers(ctx); errors.Is(err, runtime.ErrClosed) {
			if rt, err := runtime.New(cfg); err == nil {
				e.rt = rt
			}
		}
		if list, err := e.rt.ListContainers(ctx); err == nil {
			for _, c := range list {
				_ = e.rt.RemoveContainer(ctx, c.ID)
			}
		}
		e.rt.Close()
		assertNoCgroups(t, cgroupRoot)
		assertNoMounts(t, dir)
	})
	img, err := imagebuild.ShellImage("/usr/bin/busybox", "registry.k8s.io/busybox:latest")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := imagebuild.WriteDockerArchive(&buf, img); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "busybox.tar")
	if err := os.WriteFile(archive, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.ImportImages(context.Background(), archive); err != nil {
		t.Fatal(err)
	}
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func (e *env) spec(id string, command ...string) runtime.ContainerSpec {
	return runtime.ContainerSpec{
		ID: id, Image: "registry.k8s.io/busybox", Command: command,
		LogPath:      filepath.Join(e.dir, "logs", id+".log"),
		CgroupParent: e.cgroupRoot + "/pods/uid1",
		Labels:       map[string]string{"name": id},
	}
}

func (e *env) run(t *testing.T, spec runtime.ContainerSpec) {
	t.Helper()
	ctx := context.Background()
	if err := e.rt.CreateContainer(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.StartContainer(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
}

func (e *env) waitExited(t *testing.T, id string, timeout time.Duration) runtime.ContainerStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := e.rt.ContainerStatus(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.State == runtime.StateExited {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s still %s after %v", id, st.State, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var criLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [FP] `)

func TestRunEchoLogsAndExitCode(t *testing.T) {
	e := newEnv(t)
	spec := e.spec("echo", "sh", "-c", "echo hello; echo oops >&2; printf 'no newline'; exit 3")
	spec.Env = []string{"GREETING=hi"}
	e.run(t, spec)
	st := e.waitExited(t, "echo", 10*time.Second)
	if st.ExitCode != 3 || st.Reason != runtime.ReasonError || st.StartedAt.IsZero() || st.FinishedAt.Before(st.StartedAt) {
		t.Fatalf("status %+v", st)
	}
	if st.Labels["name"] != "echo" || st.Image != "registry.k8s.io/busybox" || !strings.HasPrefix(st.ImageID, "sha256:") {
		t.Fatalf("status metadata %+v", st)
	}
	raw, err := os.ReadFile(spec.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("log has %d lines:\n%s", len(lines), raw)
	}
	var body []string
	for _, l := range lines {
		if !criLine.MatchString(l) {
			t.Errorf("not a CRI log line: %q", l)
		}
		body = append(body, l[31:])
	}
	wantBody := map[string]bool{"stdout F hello": true, "stderr F oops": true, "stdout F no newline": true}
	for _, b := range body {
		if !wantBody[b] {
			t.Errorf("unexpected entry %q", b)
		}
	}
	var out, errOut bytes.Buffer
	if err := logs.ReadLogs(context.Background(), spec.LogPath, logs.ReadOptions{TailLines: -1}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if out.String() != "hello\nno newline\n" || errOut.String() != "oops\n" {
		t.Fatalf("ReadLogs: %q %q", out.String(), errOut.String())
	}
}

func TestExitZeroAndEnvAndCwd(t *testing.T) {
	e := newEnv(t)
	spec := e.spec("env", "sh", "-c", `echo "$GREETING $(pwd) $(id -u) $(hostname)"`)
	spec.Env = []string{"GREETING=hi"}
	spec.WorkingDir = "/tmp/work"
	spec.Hostname = "pod-a"
	e.run(t, spec)
	st := e.waitExited(t, "env", 10*time.Second)
	if st.ExitCode != 0 || st.Reason != runtime.ReasonCompleted {
		t.Fatalf("status %+v", st)
	}
	if got := logContent(t, spec.LogPath); got != "hi /tmp/work 0 pod-a\n" {
		t.Fatalf("output %q", got)
	}
}

func logContent(t *testing.T, path string) string {
	t.Helper()
	var out bytes.Buffer
	if err := logs.ReadLogs(context.Background(), path, logs.ReadOptions{TailLines: -1}, &out, &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestMissingExecutable(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	spec := e.spec("missing", "foo")
	if err := e.rt.CreateContainer(ctx, spec); err != nil {
		t.Fatal(err)
	}
	err := e.rt.StartContainer(ctx, "missing")
	if !errors.Is(err, runtime.ErrStartFailed) {
		t.Fatalf("err = %v, want ErrStartFailed", err)
	}
	st, err := e.rt.ContainerStatus(ctx, "missing")
	if err != nil {
		t.Fatal(err)
	}
	want := `exec: "foo": executable file not found in $PATH`
	if st.State != runtime.StateExited || st.Reason != runtime.ReasonStartError || st.ExitCode != 128 || st.Message != want {
		t.Fatalf("status %+v, want message %q", st, want)
	}
	if err := e.rt.StartContainer(ctx, "missing"); !errors.Is(err, runtime.ErrInvalidState) {
		t.Fatalf("second start: %v", err)
	}
}

func TestStopGrace(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// busybox sleep as PID 1 installs no TERM handler: TERM is ignored and
	// only KILL after the grace period ends it.
	e.run(t, e.spec("ignores-term", "sleep", "1000"))
	// sh traps TERM and exits at once.
	e.run(t, e.spec("handles-term", "sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"))
	time.Sleep(200 * time.Millisecond) // let sh install its trap

	start := time.Now()
	if err := e.rt.StopContainer(ctx, "ignores-term", 700*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Fatalf("stopped after %v, before the grace period", d)
	}
	if st, _ := e.rt.ContainerStatus(ctx, "ignores-term"); st.ExitCode != 137 || st.State != runtime.StateExited {
		t.Fatalf("status %+v", st)
	}

	start = time.Now()
	if err := e.rt.StopContainer(ctx, "handles-term", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("TERM handler ignored: stop took %v", d)
	}
	if st, _ := e.rt.ContainerStatus(ctx, "handles-term"); st.ExitCode != 0 || st.Reason != runtime.ReasonCompleted {
		t.Fatalf("status %+v", st)
	}
	// Stopping an exited container is fine.
	if err := e.rt.StopContainer(ctx, "handles-term", time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestMemoryLimitOOMKilled(t *testing.T) {
	e := newEnv(t)
	spec := e.spec("oom", "sh", "-c", `x=$(tr '\000' a </dev/zero | head -c 200000000); echo survived`)
	spec.Resources.MemoryLimit = 32 << 20
	e.run(t, spec)
	st := e.waitExited(t, "oom", 30*time.Second)
	if st.Reason != runtime.ReasonOOMKilled || st.ExitCode != 137 {
		t.Fatalf("status %+v, want OOMKilled 137; output %q", st, logContent(t, spec.LogPath))
	}
}

func TestResourcesApplied(t *testing.T) {
	e := newEnv(t)
	spec := e.spec("limits", "sleep", "1000")
	spec.Resources = runtime.Resources{CPUShares: 256, CPUQuota: 20000, CPUPeriod: 100000, MemoryLimit: 48 << 20, PidsLimit: 42}
	e.run(t, spec)
	cg := spec.CgroupParent + "/limits"
	for file, want := range map[string]string{
		"/sys/fs/cgroup/cpu" + cg + "/cpu.shares":               "256",
		"/sys/fs/cgroup/cpu" + cg + "/cpu.cfs_quota_us":         "20000",
		"/sys/fs/cgroup/cpu" + cg + "/cpu.cfs_period_us":        "100000",
		"/sys/fs/cgroup/memory" + cg + "/memory.limit_in_bytes": fmt.Sprint(48 << 20),
		"/sys/fs/cgroup/pids" + cg + "/pids.max":                "42",
	} {
		b, err := os.ReadFile(file)
		if err != nil || strings.TrimSpace(string(b)) != want {
			t.Errorf("%s = %q, %v; want %s", file, b, err, want)
		}
	}
}

func TestRemoveCleansUp(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	spec := e.spec("victim", "sh", "-c", "sleep 1000 & sleep 1000")
	e.run(t, spec)
	st, err := e.rt.ContainerStatus(ctx, "victim")
	if err != nil || st.State != runtime.StateRunning || st.Pid <= 0 {
		t.Fatalf("status %+v %v", st, err)
	}
	var pids []int
	for i := 0; i < 100 && len(pids) < 2; i++ {
		time.Sleep(20 * time.Millisecond)
		pids = containerPids(t, spec.CgroupParent+"/victim")
	}
	if len(pids) < 2 {
		t.Fatalf("expected two sleeps in the cgroup, got %v", pids)
	}
	if err := e.rt.RemoveContainer(ctx, "victim"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.ContainerStatus(ctx, "victim"); !errors.Is(err, runtime.ErrContainerNotFound) {
		t.Fatalf("status after remove: %v", err)
	}
	for _, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			t.Errorf("process %d still exists", pid)
		}
	}
	assertNoMounts(t, e.dir)
	assertNoCgroups(t, e.cgroupRoot+"/pods")
	if _, err := os.Stat(filepath.Join(e.cfg.Root, "containers", "victim")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("container directory left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.StateDir, "victim")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("libcontainer state left: %v", err)
	}
	if err := e.rt.RemoveContainer(ctx, "victim"); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	if _, err := os.Stat(spec.LogPath); err != nil {
		t.Errorf("log file should be kept for the caller: %v", err)
	}
}

func TestCgroupParentKeptWhileShared(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, b := e.spec("a", "sleep", "1000"), e.spec("b", "sleep", "1000")
	e.run(t, a)
	e.run(t, b)
	if err := e.rt.RemoveContainer(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory" + b.CgroupParent + "/b"); err != nil {
		t.Fatalf("b's cgroup gone after removing a: %v", err)
	}
	if err := e.rt.RemoveContainer(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	assertNoCgroups(t, e.cgroupRoot)
}

func TestCreateErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.rt.CreateContainer(ctx, runtime.ContainerSpec{ID: "x", Image: "nginx:none", Command: []string{"sh"}}); !errors.Is(err, runtime.ErrImageNotPresent) {
		t.Errorf("missing image: %v", err)
	}
	if err := e.rt.CreateContainer(ctx, runtime.ContainerSpec{ID: "bad/id", Image: "registry.k8s.io/busybox"}); !errors.Is(err, runtime.ErrInvalidSpec) {
		t.Errorf("bad id: %v", err)
	}
	if err := e.rt.CreateContainer(ctx, e.spec("dup", "true")); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.CreateContainer(ctx, e.spec("dup", "true")); !errors.Is(err, runtime.ErrContainerExists) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := e.rt.ContainerStatus(ctx, "nope"); !errors.Is(err, runtime.ErrContainerNotFound) {
		t.Errorf("status of unknown: %v", err)
	}
	if st, _ := e.rt.ContainerStatus(ctx, "dup"); st.State != runtime.StateCreated || st.CreatedAt.IsZero() {
		t.Errorf("created status %+v", st)
	}
}

func TestJoinNamespaces(t *testing.T) {
	e := newEnv(t)
	ns := fmt.Sprintf("kedge-rt-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	// A first container owns private IPC and UTS namespaces; a second one
	// joins them and the network namespace made above.
	owner := e.spec("owner", "sleep", "1000")
	owner.Hostname = "pod-host"
	e.run(t, owner)
	st, _ := e.rt.ContainerStatus(context.Background(), "owner")
	joiner := e.spec("joiner", "sh", "-c", "hostname; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '")
	joiner.NetNS = "/run/netns/" + ns
	joiner.UTSNS = fmt.Sprintf("/proc/%d/ns/uts", st.Pid)
	joiner.IPCNS = fmt.Sprintf("/proc/%d/ns/ipc", st.Pid)
	e.run(t, joiner)
	if s := e.waitExited(t, "joiner", 10*time.Second); s.ExitCode != 0 {
		t.Fatalf("joiner %+v: %s", s, logContent(t, joiner.LogPath))
	}
	if got := logContent(t, joiner.LogPath); got != "pod-host\nlo\n" {
		t.Fatalf("joined namespaces show %q, want hostname pod-host and only lo", got)
	}
}

func TestStatePersistsAcrossRestart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.run(t, e.spec("done", "true"))
	e.waitExited(t, "done", 10*time.Second)
	running := e.spec("running", "sh", "-c", "echo before; sleep 1000")
	e.run(t, running)
	waitLog(t, running.LogPath, "before")
	if err := e.rt.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	rt2, err := runtime.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt2
	list, err := rt2.ListContainers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "done" || list[0].State != runtime.StateExited || list[1].ID != "running" || list[1].State != runtime.StateRunning {
		t.Fatalf("after restart: %+v", list)
	}
	if err := rt2.StopContainer(ctx, "running", 0); err != nil {
		t.Fatal(err)
	}
	if st, _ := rt2.ContainerStatus(ctx, "running"); st.State != runtime.StateExited {
		t.Fatalf("adopted container after stop: %+v", st)
	}
}

func waitLog(t *testing.T, path, want string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(want)) {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%q never appeared in %s", want, path)
}

func containerPids(t *testing.T, cgroup string) []int {
	t.Helper()
	f, err := os.Open("/sys/fs/cgroup/pids" + cgroup + "/cgroup.procs")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pids []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var p int
		fmt.Sscan(sc.Text(), &p)
		pids = append(pids, p)
	}
	return pids
}

// assertNoCgroups fails if cgroup path p exists in any hierarchy.
func assertNoCgroups(t *testing.T, p string) {
	t.Helper()
	ents, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		d := filepath.Join("/sys/fs/cgroup", e.Name(), p)
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup directory left: %s", d)
		}
	}
}

// assertNoMounts fails if a mount point below dir remains.
func assertNoMounts(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			t.Errorf("mount left: %s", l)
		}
	}
}

package runtime_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"kedge.dev/kedge/runtime"
)

// TestAdoptAfterProcessExit starts a container from another process that
// then exits without closing its Runtime (as an agent that crashes), and
// checks that a new Runtime adopts it: status running, output written
// meanwhile reaches the log, and its end is noticed.
func TestAdoptAfterProcessExit(t *testing.T) {
	e := newEnv(t)
	if err := e.rt.Close(); err != nil {
		t.Fatal(err)
	}
	spec := e.spec("adopted", "sh", "-c", "echo one; sleep 0.5; echo two; sleep 1000")
	startInOtherProcess(t, e.cfg, spec)
	rt, err := runtime.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt
	ctx := context.Background()
	st, err := rt.ContainerStatus(ctx, "adopted")
	if err != nil || st.State != runtime.StateRunning || st.Pid <= 0 {
		t.Fatalf("adopted status %+v %v", st, err)
	}
	waitLog(t, spec.LogPath, "two")
	if got := logContent(t, spec.LogPath); got != "one\ntwo\n" {
		t.Fatalf("log %q", got)
	}
	if err := rt.StopContainer(ctx, "adopted", 0); err != nil {
		t.Fatal(err)
	}
	st, _ = rt.ContainerStatus(ctx, "adopted")
	if st.State != runtime.StateExited || st.Reason != runtime.ReasonUnknown || st.ExitCode != 255 {
		t.Fatalf("after stop: %+v", st)
	}
}

// startInOtherProcess starts the containers from another process (the
// test binary running TestHelperStartContainer) that exits without
// closing its Runtime, as an agent that crashes. With cfg.ExitRecorder set
// that process runs with an exit recorder in cfg.ExitDir.
func startInOtherProcess(t *testing.T, cfg runtime.Config, specs ...runtime.ContainerSpec) {
	t.Helper()
	specJSON, err := json.Marshal(specs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperStartContainer$", "-test.v")
	cmd.Env = append(os.Environ(),
		"KEDGE_RT_HELPER_ROOT="+cfg.Root, "KEDGE_RT_HELPER_STATE="+cfg.StateDir,
		"KEDGE_RT_HELPER_CGROUP="+cfg.CgroupRoot, "KEDGE_RT_HELPER_SPEC="+string(specJSON))
	if len(cfg.ExitRecorder) > 0 {
		cmd.Env = append(cmd.Env, "KEDGE_RT_HELPER_EXITDIR="+cfg.ExitDir)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
}

// TestExitCodesOfContainersNotOurs checks that exit codes survive the
// runtime's process: a container that ends while no runtime runs, one that
// ends after a new runtime adopted it, and one the new runtime kills all
// report their real code (through the exit recorder), not 255/Unknown.
func TestExitCodesOfContainersNotOurs(t *testing.T) {
	e := newEnv(t)
	if err := e.rt.Close(); err != nil {
		t.Fatal(err)
	}
	e.cfg.ExitDir = filepath.Join(e.dir, "exits")
	e.cfg.ExitRecorder = []string{os.Args[0], "exit-recorder"}
	startInOtherProcess(t, e.cfg,
		e.spec("ends-while-down", "sh", "-c", "sleep 0.5; exit 7"),
		e.spec("ends-adopted", "sh", "-c", "sleep 3; exit 5"),
		e.spec("killed-adopted", "sleep", "1000"))
	time.Sleep(1500 * time.Millisecond) // the first ends with no runtime at all
	rt, err := runtime.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt
	ctx := context.Background()
	if st := e.waitExited(t, "ends-while-down", 5*time.Second); st.ExitCode != 7 || st.Reason != runtime.ReasonError {
		t.Errorf("ended while down: %+v", st)
	}
	if st, err := rt.ContainerStatus(ctx, "ends-adopted"); err != nil || st.State != runtime.StateRunning {
		t.Fatalf("not adopted: %+v %v", st, err)
	}
	if st := e.waitExited(t, "ends-adopted", 10*time.Second); st.ExitCode != 5 || st.Reason != runtime.ReasonError {
		t.Errorf("ended after adoption: %+v", st)
	}
	if err := rt.StopContainer(ctx, "killed-adopted", 0); err != nil {
		t.Fatal(err)
	}
	if st := e.waitExited(t, "killed-adopted", 5*time.Second); st.ExitCode != 137 {
		t.Errorf("killed after adoption: %+v", st)
	}
	// Records are forgotten with their containers.
	left, _ := filepath.Glob(filepath.Join(e.cfg.ExitDir, "[0-9]*"))
	if len(left) != 0 {
		t.Errorf("exit records left behind: %v", left)
	}
}

// TestHelperStartContainer is the other process of TestAdoptAfterProcessExit.
func TestHelperStartContainer(t *testing.T) {
	root := os.Getenv("KEDGE_RT_HELPER_ROOT")
	if root == "" {
		t.Skip("helper process of TestAdoptAfterProcessExit, not a test by itself")
	}
	var specs []runtime.ContainerSpec
	if err := json.Unmarshal([]byte(os.Getenv("KEDGE_RT_HELPER_SPEC")), &specs); err != nil {
		t.Fatal(err)
	}
	cfg := runtime.Config{Root: root, StateDir: os.Getenv("KEDGE_RT_HELPER_STATE"), CgroupRoot: os.Getenv("KEDGE_RT_HELPER_CGROUP")}
	if dir := os.Getenv("KEDGE_RT_HELPER_EXITDIR"); dir != "" {
		cfg.ExitDir, cfg.ExitRecorder = dir, []string{os.Args[0], "exit-recorder"}
	}
	rt, err := runtime.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, spec := range specs {
		if err := rt.CreateContainer(ctx, spec); err != nil {
			t.Fatal(err)
		}
		if err := rt.StartContainer(ctx, spec.ID); err != nil {
			t.Fatal(err)
		}
	}
	os.Exit(0) // like a crash: no Close, no cleanup
}

// TestCloseLeavesNoGoroutines checks that Close ends the monitor and the
// log copiers while a container keeps running.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	e := newEnv(t)
	e.run(t, e.spec("bg", "sleep", "1000"))
	if err := e.rt.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:goruntime.Stack(buf, true)])
		var leaked []string
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "kedge.dev/kedge/runtime.") || strings.Contains(g, "kedge.dev/kedge/runtime/") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left after Close:\n%s", strings.Join(leaked, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Reopen so that cleanup can remove the container.
	rt, err := runtime.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt
	if st, err := rt.ContainerStatus(context.Background(), "bg"); err != nil || st.State != runtime.StateRunning {
		t.Fatalf("container did not outlive Close: %+v %v", st, err)
	}
}

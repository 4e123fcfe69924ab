package runtime_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
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
	specJSON, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperStartContainer$", "-test.v")
	cmd.Env = append(os.Environ(),
		"KEDGE_RT_HELPER_ROOT="+e.cfg.Root, "KEDGE_RT_HELPER_STATE="+e.cfg.StateDir,
		"KEDGE_RT_HELPER_CGROUP="+e.cfg.CgroupRoot, "KEDGE_RT_HELPER_SPEC="+string(specJSON))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
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

// TestHelperStartContainer is the other process of TestAdoptAfterProcessExit.
func TestHelperStartContainer(t *testing.T) {
	root := os.Getenv("KEDGE_RT_HELPER_ROOT")
	if root == "" {
		t.Skip("helper process of TestAdoptAfterProcessExit, not a test by itself")
	}
	var spec runtime.ContainerSpec
	if err := json.Unmarshal([]byte(os.Getenv("KEDGE_RT_HELPER_SPEC")), &spec); err != nil {
		t.Fatal(err)
	}
	rt, err := runtime.New(runtime.Config{Root: root, StateDir: os.Getenv("KEDGE_RT_HELPER_STATE"), CgroupRoot: os.Getenv("KEDGE_RT_HELPER_CGROUP")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := rt.CreateContainer(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := rt.StartContainer(ctx, spec.ID); err != nil {
		t.Fatal(err)
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

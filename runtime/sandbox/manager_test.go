package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hostNS holds the inodes of the test process's own namespaces, read before any test ran.
var hostNS = map[string]uint64{}

func TestMain(m *testing.M) {
	for _, kind := range []string{"net", "ipc", "uts"} {
		var st syscall.Stat_t
		if err := syscall.Stat("/proc/thread-self/ns/"+kind, &st); err == nil {
			hostNS[kind] = st.Ino
		}
	}
	os.Exit(m.Run())
}

// requireRoot skips loudly: these tests create namespaces and mounts for real.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root to create namespaces and bind mounts (CI runs as root)")
	}
}

// newTestManager returns a Manager on a temporary Dir whose sandboxes are removed even if
// the test fails.
func newTestManager(t testing.TB) (*Manager, string) {
	t.Helper()
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "sandboxes")
	m, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		uids, err := m.List(context.Background())
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, uid := range uids {
			if err := m.Remove(context.Background(), uid); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return m, dir
}

// inode identifies a namespace: two paths name the same namespace iff their inodes match.
func inode(t testing.TB, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

// mountsUnder lists mount points at or below dir in this process's mount namespace.
func mountsUnder(t testing.TB, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	return out
}

func TestEnsureCreatesPinnedNamespaces(t *testing.T) {
	m, dir := newTestManager(t)
	ctx := context.Background()

	a, err := m.Ensure(ctx, Spec{PodUID: "pod-a", Hostname: "web-0"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Ensure(ctx, Spec{PodUID: "pod-b", Hostname: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	want := Sandbox{PodUID: "pod-a", NetNS: filepath.Join(dir, "pod-a", "net"),
		IPCNS: filepath.Join(dir, "pod-a", "ipc"), UTSNS: filepath.Join(dir, "pod-a", "uts")}
	if a != want {
		t.Fatalf("Ensure = %+v, want %+v", a, want)
	}

	host := hostNS
	for kind, pair := range map[string][2]string{
		"net": {a.NetNS, b.NetNS}, "ipc": {a.IPCNS, b.IPCNS}, "uts": {a.UTSNS, b.UTSNS},
	} {
		ia, ib := inode(t, pair[0]), inode(t, pair[1])
		if ia == host[kind] || ib == host[kind] {
			t.Errorf("%s: a pod shares the host's namespace", kind)
		}
		if ia == ib {
			t.Errorf("%s: two pods share one namespace", kind)
		}
	}

	for sb, name := range map[Sandbox]string{a: "web-0", b: "web-1"} {
		out, err := exec.Command("nsenter", "--uts="+sb.UTSNS, "hostname").CombinedOutput()
		if err != nil {
			t.Fatalf("nsenter hostname: %v: %s", err, out)
		}
		if got := strings.TrimSpace(string(out)); got != name {
			t.Errorf("hostname in %s = %q, want %q", sb.PodUID, got, name)
		}
	}
	if h, _ := os.Hostname(); h == "web-0" || h == "web-1" {
		t.Errorf("host hostname changed to %q", h)
	}
}

func TestNoThreadLeftInPodNamespace(t *testing.T) {
	m, _ := newTestManager(t)
	// Many sandboxes, so that some namespace is created while the scheduler would have
	// run the locked goroutine on the main thread.
	for i := range 40 {
		uid := "pod-" + strconv.Itoa(i)
		if _, err := m.Ensure(context.Background(), Spec{PodUID: uid, Hostname: uid}); err != nil {
			t.Fatal(err)
		}
	}
	// Every thread of the test process, the main thread included, ends up in the host's
	// namespaces: the threads that unshared were thrown away, not returned to the scheduler.
	// A thrown-away thread is still listed in /proc for a moment while it exits, so the
	// check is repeated for up to two seconds before it counts as left behind.
	var left []string
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		left = threadsOutsideHost(t)
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, l := range left {
		t.Error(l)
	}
}

// threadsOutsideHost lists the threads of this process that are not in the
// host's namespaces.
func threadsOutsideHost(t *testing.T) []string {
	t.Helper()
	host := hostNS
	var left []string
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		for kind, ino := range host {
			p := filepath.Join("/proc/self/task", task.Name(), "ns", kind)
			var st syscall.Stat_t
			if err := syscall.Stat(p, &st); err != nil {
				continue // the thread exited meanwhile
			}
			if st.Ino != ino {
				left = append(left, fmt.Sprintf("thread %s is left in a pod %s namespace", task.Name(), kind))
			}
		}
	}
	return left
}

func TestEnsureIsIdempotent(t *testing.T) {
	m, _ := newTestManager(t)
	ctx := context.Background()
	first, err := m.Ensure(ctx, Spec{PodUID: "pod-a", Hostname: "first"})
	if err != nil {
		t.Fatal(err)
	}
	netIno, utsIno := inode(t, first.NetNS), inode(t, first.UTSNS)

	// A new Manager (an agent restart) adopts the sandbox and keeps its namespaces.
	m2, err := New(Config{Dir: filepath.Dir(filepath.Dir(first.NetNS))})
	if err != nil {
		t.Fatal(err)
	}
	again, err := m2.Ensure(ctx, Spec{PodUID: "pod-a", Hostname: "second"})
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Fatalf("second Ensure = %+v, want %+v", again, first)
	}
	if inode(t, again.NetNS) != netIno || inode(t, again.UTSNS) != utsIno {
		t.Fatal("second Ensure replaced a namespace")
	}
	out, err := exec.Command("nsenter", "--uts="+again.UTSNS, "hostname").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "first" {
		t.Fatalf("hostname after re-Ensure = %q (%v), want unchanged %q", out, err, "first")
	}
}

func TestEnsureCompletesPartialSandbox(t *testing.T) {
	m, dir := newTestManager(t)
	ctx := context.Background()
	// A crash after creating the pin file but before mounting leaves an empty file.
	podDir := filepath.Join(dir, "pod-p")
	if err := os.MkdirAll(podDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(podDir, "net"), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	sb, err := m.Ensure(ctx, Spec{PodUID: "pod-p", Hostname: "p"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{sb.NetNS, sb.IPCNS, sb.UTSNS} {
		if ok, err := isPinned(p); err != nil || !ok {
			t.Errorf("%s pinned = %v, %v; want true", p, ok, err)
		}
	}
}

func TestEnsureHostNetwork(t *testing.T) {
	m, dir := newTestManager(t)
	sb, err := m.Ensure(context.Background(), Spec{PodUID: "pod-h", HostNetwork: true})
	if err != nil {
		t.Fatal(err)
	}
	want := Sandbox{PodUID: "pod-h", IPCNS: filepath.Join(dir, "pod-h", "ipc")}
	if sb != want {
		t.Fatalf("Ensure = %+v, want %+v", sb, want)
	}
	if inode(t, sb.IPCNS) == hostNS["ipc"] {
		t.Fatal("hostNetwork pod shares the host's IPC namespace")
	}
	for _, name := range []string{"net", "uts"} {
		if _, err := os.Stat(filepath.Join(dir, "pod-h", name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s pin exists for a hostNetwork pod (err=%v)", name, err)
		}
	}
}

func TestEnsureRejectsBadSpec(t *testing.T) {
	m, dir := newTestManager(t)
	tests := []Spec{
		{PodUID: "../x", Hostname: "h"},
		{PodUID: "", Hostname: "h"},
		{PodUID: "ok"},
		{PodUID: "ok", Hostname: strings.Repeat("h", 65)},
	}
	for _, spec := range tests {
		if _, err := m.Ensure(context.Background(), spec); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("Ensure(%+v) = %v, want ErrInvalidSpec", spec, err)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a rejected spec created %s", dir)
	}
}

func TestListAndRemoveLeaveNothing(t *testing.T) {
	m, dir := newTestManager(t)
	ctx := context.Background()

	if uids, err := m.List(ctx); err != nil || len(uids) != 0 {
		t.Fatalf("List on missing dir = %v, %v; want empty", uids, err)
	}
	for _, uid := range []string{"pod-a", "pod-b"} {
		if _, err := m.Ensure(ctx, Spec{PodUID: uid, Hostname: uid}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "stray-file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	uids, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(uids)
	if !slices.Equal(uids, []string{"pod-a", "pod-b"}) {
		t.Fatalf("List = %v, want [pod-a pod-b]", uids)
	}
	if got := len(mountsUnder(t, dir)); got != 6 {
		t.Fatalf("%d mounts under %s, want 6", got, dir)
	}

	for _, uid := range uids {
		if err := m.Remove(ctx, uid); err != nil {
			t.Fatal(err)
		}
		if err := m.Remove(ctx, uid); err != nil {
			t.Fatalf("second Remove(%s) = %v, want nil", uid, err)
		}
	}
	if mounts := mountsUnder(t, dir); len(mounts) != 0 {
		t.Fatalf("mounts left after Remove: %v", mounts)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "stray-file" {
		t.Fatalf("files left after Remove: %v", entries)
	}
	if uids, err := m.List(ctx); err != nil || len(uids) != 0 {
		t.Fatalf("List after Remove = %v, %v; want empty", uids, err)
	}
	if err := m.Remove(ctx, "never-existed"); err != nil {
		t.Fatalf("Remove of a missing sandbox = %v", err)
	}
}

func TestRemoveKeepsNamespaceOfRunningProcess(t *testing.T) {
	m, _ := newTestManager(t)
	ctx := context.Background()
	sb, err := m.Ensure(ctx, Spec{PodUID: "pod-r", Hostname: "r"})
	if err != nil {
		t.Fatal(err)
	}
	want := inode(t, sb.NetNS)
	cmd := exec.Command("nsenter", "--net="+sb.NetNS, "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	// Wait until sleep runs inside the namespace (nsenter execs it in place).
	nsLink := filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "ns", "net")
	for i := 0; ; i++ {
		var st syscall.Stat_t
		if syscall.Stat(nsLink, &st) == nil && st.Ino == want {
			break
		}
		if i == 200 {
			t.Fatal("process never entered the pod's network namespace")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := m.Remove(ctx, "pod-r"); err != nil {
		t.Fatal(err)
	}
	if got := inode(t, nsLink); got != want {
		t.Fatalf("process namespace changed after Remove: %d, want %d", got, want)
	}
}

package exitrec

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the recorder process for TestEnsure.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "exit-recorder" {
		err := RunProcess(context.Background(), os.Args[2], RecorderConfig{IdleCheck: 200 * time.Millisecond})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// message builds one connector datagram part as the kernel sends it.
func message(what uint32, pid, tgid int32, code uint32) []byte {
	ne := binary.NativeEndian
	data := make([]byte, procEventExitLen+8) // parent pid and tgid follow on newer kernels
	ne.PutUint32(data[0:], what)
	ne.PutUint32(data[16:], uint32(pid))
	ne.PutUint32(data[20:], uint32(tgid))
	ne.PutUint32(data[24:], code)
	msg := make([]byte, nlmsgHdrLen+cnMsgLen+len(data))
	ne.PutUint32(msg[0:], uint32(len(msg)))
	ne.PutUint32(msg[nlmsgHdrLen:], cnIdxProc)
	ne.PutUint32(msg[nlmsgHdrLen+4:], cnValProc)
	ne.PutUint16(msg[nlmsgHdrLen+16:], uint16(len(data)))
	copy(msg[nlmsgHdrLen+cnMsgLen:], data)
	return msg
}

func TestParseExits(t *testing.T) {
	exit7 := message(procEventExit, 42, 42, 7<<8)
	killed := message(procEventExit, 43, 43, uint32(unix.SIGKILL))
	fork := message(0x00000001, 44, 44, 0)
	other := message(procEventExit, 45, 45, 0)
	binary.NativeEndian.PutUint32(other[nlmsgHdrLen:], 9) // another connector
	short := append([]byte(nil), exit7[:nlmsgHdrLen+cnMsgLen+10]...)
	binary.NativeEndian.PutUint32(short[0:], uint32(len(short)))
	tests := []struct {
		name string
		in   []byte
		want []exitEvent
	}{
		{"exit code", exit7, []exitEvent{{42, 42, 7 << 8}}},
		{"several, other events skipped", concat(fork, exit7, other, killed), []exitEvent{{42, 42, 7 << 8}, {43, 43, unix.WaitStatus(unix.SIGKILL)}}},
		{"truncated event", short, nil},
		{"length beyond the buffer", exit7[:len(exit7)-4], nil},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseExits(tt.in)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	if ws := unix.WaitStatus(7 << 8); !ws.Exited() || ws.ExitStatus() != 7 {
		t.Fatal("a kernel exit_code is not a wait status")
	}
}

func concat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// startTicks reads a process's start time (clock ticks since boot).
func startTicks(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	v, err := strconv.ParseUint(f[19], 10, 64) // field 22 overall
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// runRecorder runs Run in this process until the test ends.
func runRecorder(t *testing.T, dir string, idle time.Duration) <-chan error {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the process events connector needs root")
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		done <- Run(ctx, RecorderConfig{Dir: dir, IdleCheck: idle}, func() { close(ready) })
		close(finished)
	}()
	t.Cleanup(func() { cancel(); <-finished })
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("recorder: %v", err)
	}
	return done
}

func waitRecord(t *testing.T, d *Dir, pid int, start uint64) unix.WaitStatus {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if ws, ok := d.Lookup(pid, start); ok {
			return ws
		}
	}
	t.Fatalf("no exit record for pid %d", pid)
	return 0
}

func TestRecordsRegisteredExits(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	runRecorder(t, dir, time.Hour)

	// A process that exits with a code, one killed by a signal, and one
	// nobody registered.
	exiter := exec.Command("sh", "-c", "read x; exit 7")
	in, _ := exiter.StdinPipe()
	sleeper := exec.Command("sleep", "100")
	other := exec.Command("sh", "-c", "read x; exit 3")
	oin, _ := other.StdinPipe()
	for _, c := range []*exec.Cmd{exiter, sleeper, other} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*exec.Cmd{exiter, sleeper} {
		if err := d.Register(c.Process.Pid, startTicks(t, c.Process.Pid), "c"+strconv.Itoa(c.Process.Pid)); err != nil {
			t.Fatal(err)
		}
	}
	exStart, slStart := startTicks(t, exiter.Process.Pid), startTicks(t, sleeper.Process.Pid)
	in.Close()
	oin.Close()
	_ = sleeper.Process.Signal(syscall.SIGKILL)
	for _, c := range []*exec.Cmd{exiter, sleeper, other} {
		_ = c.Wait()
	}
	if ws := waitRecord(t, d, exiter.Process.Pid, exStart); !ws.Exited() || ws.ExitStatus() != 7 {
		t.Errorf("exiter: %v", describe(ws))
	}
	if ws := waitRecord(t, d, sleeper.Process.Pid, slStart); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("sleeper: %v", describe(ws))
	}
	if _, err := os.Stat(filepath.Join(dir, strconv.Itoa(other.Process.Pid)+recordSuffix)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an unregistered process was recorded: %v", err)
	}
	// Another process's start time (a reused PID) does not match.
	if _, ok := d.Lookup(exiter.Process.Pid, exStart+1); ok {
		t.Error("a record matched another start time")
	}
	// Registering the PID again (reused by a new container) drops the
	// old record; Forget removes both files.
	if err := d.Register(exiter.Process.Pid, exStart+5, "new"); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Lookup(exiter.Process.Pid, exStart); ok {
		t.Error("a stale record survived a new registration")
	}
	d.Forget(exiter.Process.Pid)
	if _, err := os.Stat(filepath.Join(dir, strconv.Itoa(exiter.Process.Pid))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("registration left after Forget: %v", err)
	}
}

func TestRecorderLeavesWhenIdle(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("sleep", "100")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
	start := startTicks(t, sleeper.Process.Pid)
	if err := d.Register(sleeper.Process.Pid, start, "c"); err != nil {
		t.Fatal(err)
	}
	done := runRecorder(t, dir, 50*time.Millisecond)
	if !Running(dir) {
		t.Fatal("Running is false while a recorder runs")
	}
	// Owned and watching: stays. Not owned but watching: stays (that is
	// what it is for: the runtime is down, the container runs).
	d.Close()
	select {
	case err := <-done:
		t.Fatalf("recorder left with a registered process running: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	// The container ends: recorded, nothing else to watch, no owner.
	_ = sleeper.Process.Kill()
	_ = sleeper.Wait()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("recorder did not leave once idle")
	}
	if Running(dir) {
		t.Fatal("Running is true after the recorder left")
	}
	d2, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if ws, ok := d2.Lookup(sleeper.Process.Pid, start); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the record of the last exit: %v %v", ok, describe(ws))
	}
}

func TestEnsure(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	argv := []string{os.Args[0], "exit-recorder"}
	pid, err := Ensure(ctx, d, argv)
	if err != nil || pid == 0 {
		t.Fatalf("Ensure: pid %d, %v", pid, err)
	}
	if pid2, err := Ensure(ctx, d, argv); err != nil || pid2 != 0 {
		t.Fatalf("second Ensure started another recorder: pid %d, %v", pid2, err)
	}
	// A registered process that ends while the owner is gone is recorded
	// by the recorder process.
	c := exec.Command("sh", "-c", "read x; exit 9")
	in, _ := c.StdinPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	start := startTicks(t, c.Process.Pid)
	if err := d.Register(c.Process.Pid, start, "c"); err != nil {
		t.Fatal(err)
	}
	d.Close()
	in.Close()
	_ = c.Wait()
	d, err = OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ws := waitRecord(t, d, c.Process.Pid, start); ws.ExitStatus() != 9 {
		t.Fatalf("recorded %v", describe(ws))
	}
	d.Forget(c.Process.Pid)
	d.Close()
	// Idle and unowned: the process leaves.
	for deadline := time.Now().Add(5 * time.Second); Running(dir); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("recorder process did not leave when idle")
		}
	}
	if err := unix.Kill(pid, 0); err == nil {
		time.Sleep(100 * time.Millisecond) // Ensure's goroutine reaps it
		if err := unix.Kill(pid, 0); err == nil {
			t.Fatalf("recorder process %d still exists", pid)
		}
	}
}

func TestFDStore(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	runRecorder(t, dir, time.Hour)
	ctx := context.Background()

	// A pipe's write end kept by the recorder: the reader sees no EOF
	// after we close our copy, and data written through the copy we take
	// back arrives.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	if err := d.StoreFiles(ctx, "ctr1", []string{"stdin"}, []*os.File{pw}); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	got, err := d.TakeFiles(ctx, "ctr1")
	if err != nil || got["stdin"] == nil {
		t.Fatalf("take: %v %v", got, err)
	}
	if _, err := got["stdin"].Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	got["stdin"].Close()
	buf := make([]byte, 5)
	if _, err := pr.Read(buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q %v", buf, err)
	}
	if none, err := d.TakeFiles(ctx, "unknown"); err != nil || len(none) != 0 {
		t.Fatalf("unknown key: %v %v", none, err)
	}
	// Dropped: the last write end closes, the reader sees EOF.
	if err := d.DropFiles(ctx, "ctr1"); err != nil {
		t.Fatal(err)
	}
	_ = pr.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := pr.Read(buf); !errors.Is(err, io.EOF) || n != 0 {
		t.Fatalf("after drop: read %d %v, want EOF", n, err)
	}
	if err := d.StoreFiles(ctx, "x", []string{"a", "b"}, []*os.File{pr}); err == nil {
		t.Fatal("mismatched names accepted")
	}

	// The files of a registered container are released when it ends.
	pr2, pw2, _ := os.Pipe()
	defer pr2.Close()
	c := exec.Command("sh", "-c", "read x")
	in, _ := c.StdinPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := d.Register(c.Process.Pid, startTicks(t, c.Process.Pid), "ctr2"); err != nil {
		t.Fatal(err)
	}
	if err := d.StoreFiles(ctx, "ctr2", []string{"stdin"}, []*os.File{pw2}); err != nil {
		t.Fatal(err)
	}
	pw2.Close()
	in.Close()
	_ = c.Wait()
	_ = pr2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := pr2.Read(buf); !errors.Is(err, io.EOF) || n != 0 {
		t.Fatalf("files of an ended container still held: read %d %v", n, err)
	}
}

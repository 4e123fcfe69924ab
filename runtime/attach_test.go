package runtime_test

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"kedge.dev/kedge/runtime"
)

// attachAndType attaches to container id, writes input, waits for want in
// the output, then detaches by cancelling.
func attachAndType(t *testing.T, e *env, id string, tty bool, input, want string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inR, inW := io.Pipe()
	defer inW.Close()
	var out syncBuffer
	res := make(chan error, 1)
	go func() {
		res <- e.rt.Attach(ctx, id, runtime.ExecIO{Stdin: inR, Stdout: &out, Stderr: &out, TTY: tty})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("attach to %s: no %q in %q", id, want, out.String())
		}
		io.WriteString(inW, input)
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-res:
		if err != context.Canceled {
			t.Fatalf("attach ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("attach did not end on cancel")
	}
}

func TestAttach(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	spec := e.spec("stdin", "sh", "-c", "while read l; do echo got:$l; done; echo stdin-closed")
	spec.Stdin = true
	e.run(t, spec)
	attachAndType(t, e, "stdin", false, "one\n", "got:one")
	// Stdin stays open between attaches; the log has the output too.
	attachAndType(t, e, "stdin", false, "two\n", "got:two")
	if st, _ := e.rt.ContainerStatus(ctx, "stdin"); st.State != runtime.StateRunning {
		t.Fatalf("container with stdin ended: %+v", st)
	}
	waitLog(t, spec.LogPath, "got:two")

	tty := e.spec("tty", "sh")
	tty.Stdin, tty.TTY = true, true
	e.run(t, tty)
	attachAndType(t, e, "tty", true, "echo sum-$((2+3)); tty\n", "sum-5")
	waitLog(t, tty.LogPath, "/dev/pts/")

	// Attach returns when the container exits.
	plain := e.spec("plain", "sh", "-c", "sleep 1; echo bye")
	e.run(t, plain)
	var out syncBuffer
	if err := e.rt.Attach(ctx, "plain", runtime.ExecIO{Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "bye") {
		t.Fatalf("attach output %q", out.String())
	}
	if err := e.rt.Attach(ctx, "plain", runtime.ExecIO{Stdout: &out}); err == nil {
		t.Fatal("attach to an exited container worked")
	}
}

// session is one Attach running in the background.
type session struct {
	in     *io.PipeWriter
	out    syncBuffer
	cancel context.CancelFunc
	res    chan error
}

// attachSession starts Attach to id with a stdin pipe (when withStdin)
// and collects the output.
func attachSession(e *env, id string, withStdin bool) *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{cancel: cancel, res: make(chan error, 1)}
	sio := runtime.ExecIO{Stdout: &s.out, Stderr: &s.out}
	if withStdin {
		var r *io.PipeReader
		r, s.in = io.Pipe()
		sio.Stdin = r
	}
	go func() { s.res <- e.rt.Attach(ctx, id, sio) }()
	return s
}

// waitOutput waits up to 10 s for want in the session's output.
func (s *session) waitOutput(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the attached output %q", want, s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// detach ends the session and checks that Attach returned for that.
func (s *session) detach(t *testing.T) {
	t.Helper()
	s.cancel()
	if s.in != nil {
		s.in.Close()
	}
	select {
	case err := <-s.res:
		if err != context.Canceled {
			t.Fatalf("attach ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("attach did not end on cancel")
	}
}

// notInLog checks, after a pause for the container to act, that the log
// lacks what.
func notInLog(t *testing.T, path, what string) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	if b, _ := os.ReadFile(path); strings.Contains(string(b), what) {
		t.Fatalf("%q in %s:\n%s", what, path, b)
	}
}

// TestAttachStdinOnce: a StdinOnce container's stdin stays open until the
// first attach that feeds it ends, by EOF on the client's input or by the
// client leaving, and is closed for good then; without StdinOnce a
// client's EOF leaves it open.
func TestAttachStdinOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const script = "while read l; do echo got:$l; done; echo stdin-closed; sleep 1000"

	once := e.spec("once", "sh", "-c", script)
	once.Stdin, once.StdinOnce = true, true
	e.run(t, once)
	// No EOF before any attach, nor after one that only reads output.
	notInLog(t, once.LogPath, "stdin-closed")
	watch := attachSession(e, "once", false)
	notInLog(t, once.LogPath, "stdin-closed")
	watch.detach(t)
	notInLog(t, once.LogPath, "stdin-closed")

	first := attachSession(e, "once", true)
	io.WriteString(first.in, "one\n") // returns once Attach reads it
	first.in.Close()
	// The session outlives its input and sees the process read EOF.
	first.waitOutput(t, "stdin-closed")
	if got := first.out.String(); got != "got:one\nstdin-closed\n" {
		t.Fatalf("first session's output %q", got)
	}
	first.detach(t)
	// A later session's input goes nowhere; the container runs on.
	second := attachSession(e, "once", true)
	io.WriteString(second.in, "two\n")
	notInLog(t, once.LogPath, "got:two")
	second.detach(t)
	if st, _ := e.rt.ContainerStatus(ctx, "once"); st.State != runtime.StateRunning {
		t.Fatalf("stdinOnce container after its stdin closed: %+v", st)
	}

	// A client that leaves without closing its input closes stdin too.
	leave := e.spec("leave", "sh", "-c", script)
	leave.Stdin, leave.StdinOnce = true, true
	e.run(t, leave)
	s := attachSession(e, "leave", true)
	io.WriteString(s.in, "x\n")
	s.waitOutput(t, "got:x")
	s.detach(t)
	waitLog(t, leave.LogPath, "stdin-closed")

	// Without StdinOnce a client's EOF does not reach the process.
	many := e.spec("many", "sh", "-c", script)
	many.Stdin = true
	e.run(t, many)
	s = attachSession(e, "many", true)
	io.WriteString(s.in, "a\n")
	s.in.Close()
	s.waitOutput(t, "got:a")
	notInLog(t, many.LogPath, "stdin-closed")
	s.detach(t)
	attachAndType(t, e, "many", false, "b\n", "got:b")
	notInLog(t, many.LogPath, "stdin-closed")
}

// TestAttachStdinOnceAdopted: the end a runtime keeps of a StdinOnce
// container's stdin goes with the runtime, so a container not attached
// to before the runtime stopped reads EOF, and the runtime that adopts it
// treats its stdin as closed.
func TestAttachStdinOnceAdopted(t *testing.T) {
	e := newEnv(t)
	spec := e.spec("once", "sh", "-c", "while read l; do echo got:$l; done; echo stdin-closed; sleep 1000")
	spec.Stdin, spec.StdinOnce = true, true
	e.run(t, spec)
	notInLog(t, spec.LogPath, "stdin-closed")
	if err := e.rt.Close(); err != nil {
		t.Fatal(err)
	}
	rt, err := runtime.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt
	waitLog(t, spec.LogPath, "stdin-closed")
	s := attachSession(e, "once", true)
	io.WriteString(s.in, "late\n")
	notInLog(t, spec.LogPath, "got:late")
	s.detach(t)
}

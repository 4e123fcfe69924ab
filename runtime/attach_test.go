package runtime_test

import (
	"context"
	"io"
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

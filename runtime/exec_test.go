package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"kedge.dev/kedge/runtime"
)

// syncBuffer is a bytes.Buffer safe for a writer and a poller.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestExec(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	spec := e.spec("exec-target", "sleep", "1000")
	spec.Env = []string{"FOO=bar"}
	e.run(t, spec)

	tests := []struct {
		name             string
		cmd              []string
		stdin            string
		wantOut, wantErr string
		wantCode         int
	}{
		{name: "stdout and exit code", cmd: []string{"sh", "-c", "echo hi; exit 3"}, wantOut: "hi\n", wantCode: 3},
		{name: "stderr", cmd: []string{"sh", "-c", "echo oops >&2"}, wantErr: "oops\n"},
		{name: "container env", cmd: []string{"sh", "-c", "echo $FOO"}, wantOut: "bar\n"},
		{name: "stdin", cmd: []string{"cat"}, stdin: "data\nmore\n", wantOut: "data\nmore\n"},
		{name: "same pid namespace", cmd: []string{"sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"}, wantOut: "sleep 1000 "},
		{name: "killed by signal", cmd: []string{"sh", "-c", "kill -9 $$"}, wantCode: 137},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb syncBuffer
			sio := runtime.ExecIO{Stdout: &out, Stderr: &errb}
			if tc.stdin != "" {
				sio.Stdin = strings.NewReader(tc.stdin)
			}
			code, err := e.rt.Exec(ctx, "exec-target", tc.cmd, sio)
			if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode || out.String() != tc.wantOut || errb.String() != tc.wantErr {
				t.Fatalf("code %d stdout %q stderr %q; want %d %q %q", code, out.String(), errb.String(), tc.wantCode, tc.wantOut, tc.wantErr)
			}
		})
	}

	t.Run("missing executable", func(t *testing.T) {
		_, err := e.rt.Exec(ctx, "exec-target", []string{"nonexistent"}, runtime.ExecIO{})
		if !errors.Is(err, runtime.ErrStartFailed) {
			t.Fatalf("err %v, want ErrStartFailed", err)
		}
	})
	t.Run("unknown container", func(t *testing.T) {
		_, err := e.rt.Exec(ctx, "nope", []string{"true"}, runtime.ExecIO{})
		if !errors.Is(err, runtime.ErrContainerNotFound) {
			t.Fatalf("err %v", err)
		}
	})

	t.Run("tty", func(t *testing.T) {
		inR, inW := io.Pipe()
		defer inW.Close()
		var out syncBuffer
		resize := make(chan runtime.TerminalSize, 1)
		resize <- runtime.TerminalSize{Width: 123, Height: 45}
		close(resize)
		type result struct {
			code int
			err  error
		}
		res := make(chan result, 1)
		go func() {
			code, err := e.rt.Exec(ctx, "exec-target", []string{"sh"}, runtime.ExecIO{Stdin: inR, Stdout: &out, TTY: true, Resize: resize})
			res <- result{code, err}
		}()
		// The size is applied asynchronously; ask until it shows.
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), "45 123") {
			if time.Now().After(deadline) {
				t.Fatalf("no tty size in output %q", out.String())
			}
			io.WriteString(inW, "stty size; tty\n")
			time.Sleep(200 * time.Millisecond)
		}
		io.WriteString(inW, "exit 7\n")
		select {
		case r := <-res:
			if r.err != nil || r.code != 7 {
				t.Fatalf("code %d err %v", r.code, r.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("exec with tty did not end")
		}
		if !strings.Contains(out.String(), "/dev/pts/") {
			t.Fatalf("tty output %q has no /dev/pts terminal", out.String())
		}
	})

	t.Run("context cancel kills", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		inR, inW := io.Pipe()
		defer inW.Close()
		res := make(chan error, 1)
		go func() {
			_, err := e.rt.Exec(cctx, "exec-target", []string{"cat"}, runtime.ExecIO{Stdin: inR})
			res <- err
		}()
		time.Sleep(300 * time.Millisecond)
		cancel()
		select {
		case err := <-res:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("exec not killed on cancel")
		}
	})

	t.Run("runAsUser", func(t *testing.T) {
		uid := int64(1234)
		spec := e.spec("exec-user", "sleep", "1000")
		spec.Security.RunAsUser = &uid
		e.run(t, spec)
		var out syncBuffer
		if code, err := e.rt.Exec(ctx, "exec-user", []string{"id", "-u"}, runtime.ExecIO{Stdout: &out}); err != nil || code != 0 {
			t.Fatalf("code %d err %v", code, err)
		}
		if out.String() != "1234\n" {
			t.Fatalf("exec runs as uid %q, want the container's 1234", out.String())
		}
	})

	if err := e.rt.StopContainer(ctx, "exec-target", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.Exec(ctx, "exec-target", []string{"true"}, runtime.ExecIO{}); !errors.Is(err, runtime.ErrInvalidState) {
		t.Fatalf("exec in stopped container: %v", err)
	}
}

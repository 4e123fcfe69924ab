package runtime_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kedge.dev/kedge/runtime"
)

// withRecorder configures e's runtime config with an exit recorder.
func withRecorder(e *env) {
	e.cfg.ExitDir = filepath.Join(e.dir, "exits")
	e.cfg.ExitRecorder = []string{os.Args[0], "exit-recorder"}
}

// TestTTYContainerSurvivesRuntimeExit starts a TTY container from a
// process that exits (a crashed agent): with the exit recorder holding
// its pty master the shell gets no hangup and keeps running; the new
// runtime copies its terminal output to the log again and can attach.
func TestTTYContainerSurvivesRuntimeExit(t *testing.T) {
	e := newEnv(t)
	if err := e.rt.Close(); err != nil {
		t.Fatal(err)
	}
	withRecorder(e)
	spec := e.spec("tty", "sh", "-c", "i=0; while true; do echo t$i; i=$((i+1)); sleep 0.1; done")
	spec.TTY, spec.Stdin = true, true
	startInOtherProcess(t, e.cfg, spec)
	time.Sleep(time.Second) // the starting process is gone: only the recorder holds the terminal
	rt, err := runtime.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt
	st, err := rt.ContainerStatus(context.Background(), "tty")
	if err != nil || st.State != runtime.StateRunning {
		t.Fatalf("the TTY container did not survive its runtime: %+v %v", st, err)
	}
	before := strings.Count(logContent(t, spec.LogPath), "\n")
	waitLog(t, spec.LogPath, "t30") // written after the adoption
	if after := strings.Count(logContent(t, spec.LogPath), "\n"); after <= before {
		t.Fatalf("no output copied after the adoption (%d lines, then %d)", before, after)
	}
	s := attachSession(e, "tty", true)
	s.waitOutput(t, "t")
	if _, err := io.WriteString(s.in, "x"); err != nil {
		t.Fatal(err)
	}
	s.detach(t)
}

// TestStdinOnceSurvivesRuntimeRestart: with the exit recorder keeping the
// writer, a StdinOnce container's stdin stays open across a restart of the
// runtime, until the first attach after it ends.
func TestStdinOnceSurvivesRuntimeRestart(t *testing.T) {
	e := newEnv(t)
	if err := e.rt.Close(); err != nil {
		t.Fatal(err)
	}
	withRecorder(e)
	rt, err := runtime.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt
	spec := e.spec("once", "sh", "-c", "while read l; do echo got:$l; done; echo stdin-closed; sleep 1000")
	spec.Stdin, spec.StdinOnce = true, true
	e.run(t, spec)
	if err := e.rt.Close(); err != nil {
		t.Fatal(err)
	}
	notInLog(t, spec.LogPath, "stdin-closed")
	if e.rt, err = runtime.New(e.cfg); err != nil {
		t.Fatal(err)
	}
	notInLog(t, spec.LogPath, "stdin-closed")
	s := attachSession(e, "once", true)
	if _, err := io.WriteString(s.in, "hello\n"); err != nil {
		t.Fatal(err)
	}
	waitLog(t, spec.LogPath, "got:hello")
	s.in.Close() // the first attach's input ends: stdin closes for good
	waitLog(t, spec.LogPath, "stdin-closed")
	s.detach(t)
}

package exitrec

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// readyLine is what the recorder process prints once it records exits.
const readyLine = "exit recorder ready"

// logName is the recorder process's log file in its directory.
const logName = "recorder.log"

// maxLogSize is the size from which the log is rotated when a recorder
// starts.
const maxLogSize = 1 << 20

// Running reports whether a recorder holds dir.
func Running(dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, recorderLock), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	return false // closing f drops the lock we just took
}

// Ensure starts a recorder process for d unless one runs, and waits until
// it records exits. argv runs RunProcess in a new process (for kedge:
// the kedge binary and "exit-recorder"); d's path is appended. The
// process gets its own session so that it outlives the caller.
func Ensure(ctx context.Context, d *Dir, argv []string) (pid int, err error) {
	if len(argv) == 0 {
		return 0, errors.New("start exit recorder: no command")
	}
	if Running(d.path) {
		return 0, nil
	}
	// One line per recorded exit: keep the previous log at a start once it
	// is large, so that years of pod churn cannot fill /run.
	logPath := filepath.Join(d.path, logName)
	if st, err := os.Stat(logPath); err == nil && st.Size() > maxLogSize {
		_ = os.Rename(logPath, logPath+".1")
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("start exit recorder: %w", err)
	}
	defer logf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("start exit recorder: %w", err)
	}
	defer pr.Close()
	cmd := exec.Command(argv[0], append(argv[1:], d.path)...)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = pw, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return 0, fmt.Errorf("start exit recorder: %w", err)
	}
	// Reap it should it leave while we run; it is not ours to stop.
	go func() { _ = cmd.Wait() }()
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(pr).ReadString('\n')
		line <- s
	}()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case s := <-line:
		if strings.TrimSpace(s) == readyLine {
			return cmd.Process.Pid, nil
		}
		return 0, fmt.Errorf("exit recorder did not start: %s", lastLine(filepath.Join(d.path, logName)))
	case <-t.C:
		return 0, errors.New("exit recorder did not start within 10s")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// RunProcess is the main of the recorder process: dir is its argument,
// readiness goes to stdout, logs to stderr. It returns when the recorder
// leaves.
func RunProcess(ctx context.Context, dir string, cfg RecorderConfig) error {
	cfg.Dir = dir
	err := Run(ctx, cfg, func() {
		fmt.Fprintln(os.Stdout, readyLine)
		// Nothing more goes to stdout: the starter has stopped reading.
		if devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
			_ = unix.Dup2(int(devnull.Fd()), 1)
			devnull.Close()
		}
	})
	if errors.Is(err, ErrRunning) {
		fmt.Fprintln(os.Stdout, readyLine)
		return nil
	}
	return err
}

// lastLine returns the last non-empty line of a file, for error messages.
func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "no log"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

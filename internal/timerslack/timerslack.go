// Package timerslack sets the timer slack of a whole process: how much
// later than asked the kernel may wake a thread that sleeps with a timeout
// (PR_SET_TIMERSLACK, /proc/TID/timerslack_ns).
//
// The Go runtime's monitor thread (sysmon) sleeps 20 µs at a time while
// goroutines make system calls and cgo calls, and takes the processor away
// from any call that outlasts one of its sleeps, waking another thread to
// run the rest. The store makes many such calls (SQLite), so with the
// kernel's default slack of 50 µs the monitor and the threads it wakes spend
// a large share of the CPU on sleeping and waking, which is expensive in
// virtual machines. A slack of about a millisecond lets the monitor sleep
// longer and lets a short call keep its processor, at the price of timers
// firing up to the slack late. systemd's TimerSlackNSec= does the same
// from outside; this package lets the process do it itself, for its
// threads that exist already and (by inheritance) those it creates later.
//
// Children inherit the slack of the thread that forked them. Processes that
// must not, such as containers, reset it with Set(Default) before they exec.
package timerslack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Default is the kernel's default timer slack, what processes started by
// init or systemd (without TimerSlackNSec=) have.
const Default = 50 * time.Microsecond

// Get returns the calling thread's timer slack.
func Get() (time.Duration, error) {
	ns, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		return 0, fmt.Errorf("read timer slack: %w", err)
	}
	return time.Duration(ns), nil
}

// Set sets the timer slack of every thread of this process to d. Threads
// created afterwards inherit it from the thread that creates them, which
// already has it; a thread the runtime starts while Set runs is caught by
// the passes that follow. Setting another thread's slack needs CAP_SYS_NICE.
func Set(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("timer slack %v: must be positive", d)
	}
	// The calling thread first, so that a thread it creates from now on
	// inherits the new value.
	runtime.LockOSThread()
	err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(d.Nanoseconds()), 0, 0, 0)
	runtime.UnlockOSThread()
	if err != nil {
		return fmt.Errorf("set timer slack: %w", err)
	}
	want := strconv.FormatInt(d.Nanoseconds(), 10)
	for pass := 0; ; pass++ {
		changed, err := setAll(want)
		if err != nil {
			return err
		}
		if changed == 0 {
			return nil
		}
		if pass == 10 {
			return fmt.Errorf("set timer slack: threads kept appearing with another slack")
		}
	}
}

// setAll writes want to every thread whose slack differs and says how many
// it changed.
func setAll(want string) (int, error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, fmt.Errorf("set timer slack: %w", err)
	}
	changed := 0
	for _, t := range tasks {
		// Only /proc/PID has timerslack_ns, not /proc/PID/task/TID, but
		// /proc/TID names the thread TID as well.
		path := filepath.Join("/proc", t.Name(), "timerslack_ns")
		cur, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			continue // the thread exited
		}
		if err != nil {
			return 0, fmt.Errorf("set timer slack: %w", err)
		}
		if strings.TrimSpace(string(cur)) == want {
			continue
		}
		err = os.WriteFile(path, []byte(want), 0)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("set timer slack of thread %s: %w", t.Name(), err)
		}
		changed++
	}
	return changed, nil
}

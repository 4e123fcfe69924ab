package timerslack

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// slacks returns the timer slack of every thread of this process.
func slacks(t *testing.T) map[string]string {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/" + task.Name() + "/timerslack_ns")
		if err != nil {
			continue // exited meanwhile
		}
		got[task.Name()] = strings.TrimSpace(string(b))
	}
	return got
}

func TestSetReachesEveryThreadAndChildren(t *testing.T) {
	orig, err := Get()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Set(orig); err != nil {
			t.Errorf("restore timer slack %v: %v", orig, err)
		}
	})
	// Threads that exist before Set, parked in system calls.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	park := func(n int) {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread() // dies with its goroutine: a fresh thread each time
				<-stop
			}()
		}
	}
	park(4)
	time.Sleep(20 * time.Millisecond)
	if len(slacks(t)) < 3 {
		t.Fatalf("want several threads before Set, have %d", len(slacks(t)))
	}

	const want = 3 * time.Millisecond
	if err := Set(want); err != nil {
		t.Fatal(err)
	}
	if got, _ := Get(); got != want {
		t.Errorf("Get after Set = %v, want %v", got, want)
	}
	for tid, s := range slacks(t) {
		if s != "3000000" {
			t.Errorf("thread %s has slack %s ns after Set(%v)", tid, s, want)
		}
	}

	// Threads created afterwards inherit it.
	park(4)
	time.Sleep(20 * time.Millisecond)
	for tid, s := range slacks(t) {
		if s != "3000000" {
			t.Errorf("thread %s started after Set has slack %s ns", tid, s)
		}
	}
	close(stop)
	wg.Wait()

	// So do child processes, whichever thread forks them.
	out, err := exec.Command("cat", "/proc/self/timerslack_ns").Output()
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.TrimSpace(string(out)); s != "3000000" {
		t.Errorf("child process has slack %s ns, want 3000000", s)
	}

	// Back to the kernel's default, as a container's init does.
	if err := Set(Default); err != nil {
		t.Fatal(err)
	}
	for tid, s := range slacks(t) {
		if s != "50000" {
			t.Errorf("thread %s has slack %s ns after Set(Default)", tid, s)
		}
	}
}

func TestSetRefusesNonPositive(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Millisecond} {
		if err := Set(d); err == nil {
			t.Errorf("Set(%v) succeeded", d)
		}
	}
}

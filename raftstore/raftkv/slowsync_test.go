package raftkv

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// slowFsyncC interposes fsync and fdatasync (what SQLite calls) with a
// delay: an SD card that takes SLOW_FSYNC_MS per flush.
const slowFsyncC = `
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
static void pause_ms(void) {
	const char *v = getenv("SLOW_FSYNC_MS");
	long ms = v ? atol(v) : 0;
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, 0);
}
int fsync(int fd) { pause_ms(); int (*real)(int) = dlsym(RTLD_NEXT, "fsync"); return real(fd); }
int fdatasync(int fd) { pause_ms(); int (*real)(int) = dlsym(RTLD_NEXT, "fdatasync"); return real(fd); }
`

const slowSyncChildEnv = "RAFTKV_SLOW_SYNC_CHILD_DIR"

// TestSlowSyncChild is the child half of TestSlowFsyncIsLogged: a store on
// a "disk" whose flushes are slow, logging to stdout.
func TestSlowSyncChild(t *testing.T) {
	dir := os.Getenv(slowSyncChildEnv)
	if dir == "" {
		t.Skip("child process of TestSlowFsyncIsLogged only")
	}
	cfg := testConfig(t, dir)
	cfg.SlowSyncThreshold = 100 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 3; i++ {
		if _, err := s.Create(context.Background(), fmt.Sprintf("/slow/%d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
}

// With every fsync taking 250ms (a real delay injected under SQLite with
// LD_PRELOAD), raft.db's commits are logged as slow with the measured
// latency; at 0ms none is.
func TestSlowFsyncIsLogged(t *testing.T) {
	lib := filepath.Join(t.TempDir(), "slowfsync.so")
	src := lib + ".c"
	if err := os.WriteFile(src, []byte(slowFsyncC), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("gcc", "-shared", "-fPIC", "-o", lib, src, "-ldl").CombinedOutput(); err != nil {
		t.Fatalf("build the slow-fsync shim (gcc is needed, as for cgo): %v\n%s", err, out)
	}
	latency := regexp.MustCompile(`msg="slow fsync" .*op="([^"]+)" latency=([0-9.]+m?s)`)
	for _, delay := range []int{250, 0} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSlowSyncChild$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), slowSyncChildEnv+"="+t.TempDir(), "LD_PRELOAD="+lib, fmt.Sprintf("SLOW_FSYNC_MS=%d", delay))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		ops := map[string]bool{}
		for _, m := range latency.FindAllStringSubmatch(string(out), -1) {
			d, err := time.ParseDuration(m[2])
			if err != nil {
				t.Fatal(err)
			}
			if d < time.Duration(delay)*time.Millisecond {
				t.Errorf("logged latency %v is below the injected %dms", d, delay)
			}
			ops[m[1]] = true
		}
		t.Logf("delay %dms: slow commits logged for %v", delay, ops)
		switch {
		case delay > 0 && !ops["store raft log entries"]:
			// state.db commits with synchronous=NORMAL do not fsync in
			// WAL mode (its checkpoints do), so raft.db is where every
			// write waits for the disk.
			t.Errorf("with %dms fsyncs, slow raft.db commits should be logged:\n%s", delay, out)
		case delay == 0 && strings.Contains(string(out), "slow fsync"):
			t.Errorf("slow fsync logged without a delay:\n%s", out)
		}
	}
}

package raftkv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestSoleVoterFollowsTheConfiguration(t *testing.T) {
	one := testCluster(t, 1, nil)
	leaderOf(t, one...)
	if sole, alone := one[0].membership(); !sole || !alone {
		t.Fatalf("a server alone in its cluster: sole voter %v, alone %v", sole, alone)
	}
	withNonvoter := testCluster(t, 2, func(_ int, c *Config) { c.MaxVoters = 1 })
	leader, _ := leaderOf(t, withNonvoter...)
	if sole, alone := leader.membership(); !sole || alone {
		t.Errorf("leader with a nonvoter: sole voter %v, alone %v; want sole voter, not alone", sole, alone)
	}
	two := testCluster(t, 2, nil)
	leaderOf(t, two...)
	for _, s := range two {
		if sole, alone := s.membership(); sole || alone {
			t.Errorf("%s: in a cluster of two voters: sole voter %v, alone %v", s.cfg.NodeID, sole, alone)
		}
	}
}

const soleVoterChildEnv = "RAFTKV_SOLE_VOTER_CHILD_DIR"

// TestSoleVoterReadChild is the child half of
// TestSoleVoterReadsDoNotWaitForTheLog: on a disk whose fsyncs take 150ms,
// it writes continuously and reports the latency of linearizable reads.
func TestSoleVoterReadChild(t *testing.T) {
	dir := os.Getenv(soleVoterChildEnv)
	if dir == "" {
		t.Skip("child process of TestSoleVoterReadsDoNotWaitForTheLog only")
	}
	cfg := testConfig(t, dir)
	cfg.LinearizableReads = true
	cfg.SlowSyncThreshold = time.Hour
	s := openT(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.Create(ctx, "/k", []byte("0")); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Update(ctx, "/k", []byte(fmt.Sprint(i)), 0); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond) // a log write is in progress from now on
	var lat []time.Duration
	for i := 0; i < 20; i++ {
		t0 := time.Now()
		if _, err := s.Get(ctx, "/k"); err != nil {
			t.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		time.Sleep(7 * time.Millisecond)
	}
	close(stop)
	<-done
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Printf("median read latency %v\n", lat[len(lat)/2])
}

// A linearizable read on a single server does not queue behind the raft
// log write in progress: with 150ms fsyncs and a writer always waiting for
// one, reads stay far below an fsync (they took ~75ms on average when every
// read went through raft's main loop).
func TestSoleVoterReadsDoNotWaitForTheLog(t *testing.T) {
	lib := filepath.Join(t.TempDir(), "slowfsync.so")
	src := lib + ".c"
	if err := os.WriteFile(src, []byte(slowFsyncC), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("gcc", "-shared", "-fPIC", "-o", lib, src, "-ldl").CombinedOutput(); err != nil {
		t.Fatalf("build the slow-fsync shim (gcc is needed, as for cgo): %v\n%s", err, out)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSoleVoterReadChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), soleVoterChildEnv+"="+t.TempDir(), "LD_PRELOAD="+lib, "SLOW_FSYNC_MS=150")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var median time.Duration
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "median read latency "); ok {
			if median, err = time.ParseDuration(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if median == 0 {
		t.Fatalf("child reported no latency:\n%s", out)
	}
	t.Logf("median linearizable read latency with 150ms fsyncs and a busy log: %v", median)
	if median > 30*time.Millisecond {
		t.Errorf("reads wait for the raft log (median %v with 150ms fsyncs)", median)
	}
}

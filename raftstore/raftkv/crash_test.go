package raftkv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"kedge.dev/kedge/raftstore"
)

const crashChildEnv = "RAFTKV_CRASH_CHILD_DIR"

// TestCrashChild is the child half of TestSurvivesSIGKILL: it writes
// forever and prints each acknowledged revision.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("child process of TestSurvivesSIGKILL only")
	}
	cfg := testConfig(t, dir)
	s, err := Open(context.Background(), cfg)
	if err != nil {
		fmt.Println("open error:", err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		key := fmt.Sprintf("/crash/%d", i%50)
		kv, err := s.Update(context.Background(), key, []byte(strconv.Itoa(i)), 0)
		if errors.Is(err, raftstore.ErrNotFound) {
			kv, err = s.Create(context.Background(), key, []byte(strconv.Itoa(i)))
		}
		if err != nil {
			fmt.Println("write error:", err)
			os.Exit(1)
		}
		fmt.Printf("ack %d %s %d\n", kv.ModRevision, key, i)
	}
}

// A process killed with SIGKILL in the middle of writes loses no
// acknowledged write and applies nothing twice when reopened.
func TestSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := map[string]int{} // key -> last acknowledged i
		var lastRev int64
		sc := bufio.NewScanner(out)
		deadline := time.Now().Add(30 * time.Second)
		for sc.Scan() {
			var rev int64
			var key string
			var i int
			line := sc.Text()
			if n, _ := fmt.Sscanf(line, "ack %d %s %d", &rev, &key, &i); n != 3 {
				if strings.Contains(line, "error") {
					t.Fatalf("child: %s", line)
				}
				continue
			}
			acked[key], lastRev = i, rev
			if len(acked) == 50 && rev > int64(200*(round+1)) || time.Now().After(deadline) {
				break
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if lastRev == 0 {
			t.Fatalf("round %d: child acknowledged nothing", round)
		}

		s, err := Open(context.Background(), testConfig(t, dir))
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		rev, _ := s.Revision(context.Background())
		if rev < lastRev {
			t.Fatalf("round %d: revision %d after crash, but %d was acknowledged", round, rev, lastRev)
		}
		res, err := s.List(context.Background(), "/crash/", raftstore.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range res.KVs {
			got, _ := strconv.Atoi(string(kv.Value))
			if got < acked[kv.Key] {
				t.Fatalf("round %d: %s = %d, but %d was acknowledged", round, kv.Key, got, acked[kv.Key])
			}
		}
		// Revisions are dense: every write of the child is one revision
		// (the child's i counts writes from 0 in each round it continues).
		evs, err := s.db.Events(context.Background(), "/crash/", 1, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(evs)) != rev-1 {
			t.Fatalf("round %d: %d history rows for revision %d: entries applied twice or lost", round, len(evs), rev)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

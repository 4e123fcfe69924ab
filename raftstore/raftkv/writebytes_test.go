package raftkv

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkWriteBytes reports what one update of a 1 KiB value costs the
// disk on a single server: write_bytes of /proc/self/io (bytes of page cache
// dirtied, which the kernel writes back), per update, one writer. Most of
// it is whole pages: each commit appends every page it changed to the WAL
// (raft.db: the log's last leaf; state.db: a kv_log leaf, a kv_log_key
// leaf and the meta page), and the checkpoint writes them again. 1 KiB
// pages instead of 4 KiB cut it from ~33.5 to ~20 KiB (29 with only
// raft.db's), but made sustained writes 4-15 % slower in
// BenchmarkStoreCluster A/B runs, so both files keep SQLite's 4 KiB.
// Committing state.db every StateCommitInterval instead of every applied
// batch writes state.db's pages once per interval: 33.3 -> 16.8 KiB per
// update, and 19 % less time per update (the sub-benchmarks).
func BenchmarkWriteBytes(b *testing.B) {
	for _, bc := range []struct {
		name     string
		interval time.Duration
	}{{"state commit per batch", 0}, {"state commit every 100ms", 100 * time.Millisecond}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := testConfig(b, b.TempDir())
			cfg.StateCommitInterval = bc.interval
			benchmarkWriteBytes(b, openT(b, cfg))
		})
	}
}

func benchmarkWriteBytes(b *testing.B, s *Store) {
	ctx := context.Background()
	const keys = 100
	revs := make([]int64, keys)
	for i := range revs {
		kv, err := s.Create(ctx, fmt.Sprintf("/registry/events/default/ev-%03d", i), make([]byte, 1024))
		if err != nil {
			b.Fatal(err)
		}
		revs[i] = kv.ModRevision
	}
	w0 := writeBytes(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % keys
		kv, err := s.Update(ctx, fmt.Sprintf("/registry/events/default/ev-%03d", k), make([]byte, 1024), revs[k])
		if err != nil {
			b.Fatal(err)
		}
		revs[k] = kv.ModRevision
	}
	b.StopTimer()
	b.ReportMetric(float64(writeBytes(b)-w0)/float64(b.N), "bytes/write")
}

func writeBytes(tb testing.TB) int64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "write_bytes:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return n
		}
	}
	tb.Fatal("no write_bytes in /proc/self/io")
	return 0
}

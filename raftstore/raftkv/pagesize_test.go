package raftkv

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3"
)

// A new store's raft log has 1 KiB pages and its state 4 KiB (statedb's
// pageSize explains why).
func TestNewFilesPageSizes(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, testConfig(t, dir))
	if _, err := s.Create(context.Background(), "/k", make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]int{"raft.db": 1024, "state.db": 4096} {
		db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, f)+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow("PRAGMA page_size").Scan(&n); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		db.Close()
		if n != want {
			t.Errorf("%s: page_size %d, want %d", f, n, want)
		}
	}
}

// BenchmarkWriteBytes reports what one update of a 1 KiB value costs the
// disk on a single server: write_bytes of /proc/self/io (bytes of page cache
// dirtied, which the kernel writes back), per update, one writer.
func BenchmarkWriteBytes(b *testing.B) {
	s := openT(b, testConfig(b, b.TempDir()))
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

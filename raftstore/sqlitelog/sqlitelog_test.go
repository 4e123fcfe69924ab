package sqlitelog

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func openT(t *testing.T, cfg Config) *Store {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "raft.db")
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func logAt(i uint64) *raft.Log {
	return &raft.Log{Index: i, Term: i / 10, Type: raft.LogCommand, Data: []byte{byte(i)},
		Extensions: []byte("ext"), AppendedAt: time.Unix(0, int64(i)*1000)}
}

func TestLogStore(t *testing.T) {
	s := openT(t, Config{})
	check := func(first, last uint64) {
		t.Helper()
		f, _ := s.FirstIndex()
		l, _ := s.LastIndex()
		if f != first || l != last {
			t.Fatalf("first/last = %d/%d, want %d/%d", f, l, first, last)
		}
	}
	check(0, 0)
	var got raft.Log
	if err := s.GetLog(1, &got); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog on empty store: %v", err)
	}
	if err := s.StoreLog(logAt(1)); err != nil {
		t.Fatal(err)
	}
	var batch []*raft.Log
	for i := uint64(2); i <= 20; i++ {
		batch = append(batch, logAt(i))
	}
	if err := s.StoreLogs(batch); err != nil {
		t.Fatal(err)
	}
	check(1, 20)
	if err := s.GetLog(7, &got); err != nil {
		t.Fatal(err)
	}
	want := logAt(7)
	if got.Index != 7 || got.Term != want.Term || got.Type != want.Type || !bytes.Equal(got.Data, want.Data) ||
		!bytes.Equal(got.Extensions, want.Extensions) || !got.AppendedAt.Equal(want.AppendedAt) {
		t.Fatalf("GetLog(7) = %+v, want %+v", got, want)
	}
	// raft deletes a prefix after a snapshot and a suffix on conflicts.
	if err := s.DeleteRange(1, 5); err != nil {
		t.Fatal(err)
	}
	check(6, 20)
	if err := s.DeleteRange(18, 20); err != nil {
		t.Fatal(err)
	}
	check(6, 17)
	if err := s.GetLog(5, &got); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog deleted: %v", err)
	}
	// Overwriting an index replaces the entry.
	repl := logAt(17)
	repl.Term = 99
	if err := s.StoreLog(repl); err != nil {
		t.Fatal(err)
	}
	if err := s.GetLog(17, &got); err != nil || got.Term != 99 {
		t.Fatalf("overwritten entry: %+v %v", got, err)
	}
	if err := s.DeleteRange(6, 17); err != nil {
		t.Fatal(err)
	}
	check(0, 0)
}

func TestBoundsSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := openT(t, Config{Path: path})
	s.StoreLogs([]*raft.Log{logAt(3), logAt(4), logAt(5)})
	s.SetUint64([]byte("CurrentTerm"), 7)
	s.Close()
	s2 := openT(t, Config{Path: path})
	f, _ := s2.FirstIndex()
	l, _ := s2.LastIndex()
	term, err := s2.GetUint64([]byte("CurrentTerm"))
	if f != 3 || l != 5 || term != 7 || err != nil {
		t.Fatalf("after reopen: first %d last %d term %d err %v", f, l, term, err)
	}
}

func TestStableStore(t *testing.T) {
	s := openT(t, Config{})
	// hashicorp/raft compares the error text with "not found".
	if _, err := s.Get([]byte("missing")); err == nil || err.Error() != "not found" {
		t.Fatalf("Get missing: %v, want exactly \"not found\"", err)
	}
	if _, err := s.GetUint64([]byte("missing")); err == nil || err.Error() != "not found" {
		t.Fatalf("GetUint64 missing: %v, want exactly \"not found\"", err)
	}
	tests := []struct {
		key string
		val []byte
	}{
		{"a", []byte("1")}, {"empty", []byte{}}, {"nil", nil}, {"bin", []byte{0, 255, 0}},
	}
	for _, tc := range tests {
		if err := s.Set([]byte(tc.key), tc.val); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get([]byte(tc.key))
		if err != nil || !bytes.Equal(got, tc.val) {
			t.Fatalf("Get(%q) = %q, %v", tc.key, got, err)
		}
	}
	for _, v := range []uint64{0, 1, 1 << 63, 12345} {
		if err := s.SetUint64([]byte("u"), v); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetUint64([]byte("u")); err != nil || got != v {
			t.Fatalf("GetUint64 = %d, %v, want %d", got, err, v)
		}
	}
}

func TestSlowSyncIsLogged(t *testing.T) {
	var buf bytes.Buffer
	s := openT(t, Config{SlowSyncThreshold: time.Nanosecond, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err := s.StoreLog(logAt(1)); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "slow fsync") || !strings.Contains(out, "latency=") {
		t.Fatalf("no slow-fsync warning with latency in %q", out)
	}
	buf.Reset()
	s2 := openT(t, Config{SlowSyncThreshold: time.Hour, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	s2.StoreLog(logAt(1))
	if buf.Len() != 0 {
		t.Fatalf("fast commit logged: %q", buf.String())
	}
}

func TestMaintain(t *testing.T) {
	s := openT(t, Config{})
	var batch []*raft.Log
	for i := uint64(1); i <= 500; i++ {
		l := logAt(i)
		l.Data = bytes.Repeat([]byte{1}, 4096)
		batch = append(batch, l)
	}
	if err := s.StoreLogs(batch); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 500); err != nil {
		t.Fatal(err)
	}
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	var pages, free int64
	s.db.W.QueryRow("PRAGMA page_count").Scan(&pages)
	s.db.W.QueryRow("PRAGMA freelist_count").Scan(&free)
	if free != 0 || pages > 20 {
		t.Fatalf("after maintain: %d pages, %d free; want the space given back", pages, free)
	}
}

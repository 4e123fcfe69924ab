package sqlitefile

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func opts(path string) Options {
	return Options{Path: path, Synchronous: "NORMAL", CheckIntegrity: true}
}

// makeDB creates a database with some pages of data and closes it.
func makeDB(t *testing.T, path string) {
	t.Helper()
	db, err := Open(context.Background(), opts(path))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.W.Exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if _, err := db.W.Exec("INSERT INTO t (v) VALUES (?)", bytes.Repeat([]byte{byte(i)}, 500)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesCorruptFiles(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		corrupt bool
	}{
		{"missing file", func(*testing.T, string) {}, false},
		{"empty file", func(t *testing.T, p string) { os.WriteFile(p, nil, 0o600) }, false},
		{"healthy", makeDB, false},
		{"garbage", func(t *testing.T, p string) { os.WriteFile(p, []byte(strings.Repeat("x", 8192)), 0o600) }, true},
		{"short garbage", func(t *testing.T, p string) { os.WriteFile(p, []byte("hello"), 0o600) }, true},
		{"damaged page", func(t *testing.T, p string) {
			makeDB(t, p)
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// Page 3 onwards hold table data: overwrite one b-tree page.
			if _, err := f.WriteAt(bytes.Repeat([]byte{0xAB}, 4096), 4096*3); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.db")
			tc.prepare(t, path)
			before, _ := os.ReadFile(path)
			db, err := Open(context.Background(), opts(path))
			if !tc.corrupt {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				db.Close()
				return
			}
			if err == nil {
				db.Close()
				t.Fatal("Open of a corrupt file succeeded")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "Try:") {
				t.Fatalf("error %q: want ErrCorrupt naming %s with a hint", err, path)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				for i := range before {
					if i < len(after) && before[i] != after[i] {
						t.Logf("byte %d: %x -> %x", i, before[i], after[i])
					}
				}
				t.Fatalf("the corrupt file was modified (%d -> %d bytes)", len(before), len(after))
			}
		})
	}
}

func TestValidateSynchronous(t *testing.T) {
	for _, s := range []string{"FULL", "normal", "EXTRA"} {
		if err := ValidateSynchronous(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range []string{"", "OFF", "1"} {
		if err := ValidateSynchronous(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestPragmasApplied(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := Open(context.Background(), Options{Path: path, Synchronous: "FULL", ReadCacheSizeKiB: 300})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		db     string
		pragma string
		want   string
	}{
		{"W", "journal_mode", "wal"}, {"W", "synchronous", "2"}, {"W", "auto_vacuum", "2"},
		{"R", "synchronous", "2"}, {"R", "query_only", "1"}, {"W", "query_only", "0"},
		// The writer's cache size is the default, the readers' the one asked for.
		{"W", "cache_size", "-1024"}, {"R", "cache_size", "-300"},
	} {
		conn := db.W
		if tc.db == "R" {
			conn = db.R
		}
		var got string
		if err := conn.QueryRow("PRAGMA " + tc.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s PRAGMA %s = %s, want %s", tc.db, tc.pragma, got, tc.want)
		}
	}
}

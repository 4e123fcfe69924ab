package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"kedge.dev/kedge/raftstore/raftkv"
)

func TestStoreOptionsFromFileAndFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "kedge.yaml")
	if err := os.WriteFile(file, []byte("compactKeepRevisions: 50\ncompactKeepDuration: 10m\nmaintenanceInterval: -1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want raftkv.Config
	}{
		{"defaults", nil, raftkv.DefaultConfig()},
		{"file", []string{"--config", file}, func() raftkv.Config {
			c := raftkv.DefaultConfig()
			c.CompactKeepRevisions, c.CompactKeepDuration, c.MaintenanceInterval = 50, 10*time.Minute, -time.Second
			return c
		}()},
		{"flags win", []string{"--config", file, "--compact-keep-revisions", "7", "--compact-interval", "30s"}, func() raftkv.Config {
			c := raftkv.DefaultConfig()
			c.CompactKeepRevisions, c.CompactKeepDuration, c.MaintenanceInterval, c.CompactInterval = 7, 10*time.Minute, -time.Second, 30*time.Second
			return c
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseServerFlags(append(tc.args, "--advertise-address", "127.0.0.1"), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			got := raftkv.DefaultConfig()
			cfg.storeOptions.apply(&got)
			if got.CompactKeepRevisions != tc.want.CompactKeepRevisions || got.CompactKeepDuration != tc.want.CompactKeepDuration ||
				got.CompactInterval != tc.want.CompactInterval || got.MaintenanceInterval != tc.want.MaintenanceInterval {
				t.Fatalf("got %+v", cfg.storeOptions)
			}
			if cfg.ResetCluster {
				t.Fatal("ResetCluster set without the flag")
			}
		})
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("compactKeepDuration: 300\n"), 0o600)
	if _, err := parseServerFlags([]string{"--config", bad}, io.Discard); err == nil {
		t.Fatal("a duration without unit was accepted")
	}
	reset := filepath.Join(t.TempDir(), "reset.yaml")
	os.WriteFile(reset, []byte("resetCluster: true\n"), 0o600)
	if _, err := parseServerFlags([]string{"--config", reset}, io.Discard); err == nil {
		t.Fatal("resetCluster was accepted from a config file")
	}
}

func TestParseWithFile(t *testing.T) {
	tests := []struct {
		args    []string
		file    string
		dataDir string
		ok      bool
	}{
		{[]string{"b.db"}, "b.db", "def", true},
		{[]string{"b.db", "--data-dir", "/x"}, "b.db", "/x", true},
		{[]string{"--data-dir", "/x", "b.db"}, "b.db", "/x", true},
		{[]string{}, "", "", false},
		{[]string{"a", "b"}, "", "", false},
	}
	for _, tc := range tests {
		fs := newTestFlagSet()
		dd := fs.String("data-dir", "def", "")
		file, err := parseWithFile(fs, tc.args)
		if (err == nil) != tc.ok || (tc.ok && (file != tc.file || *dd != tc.dataDir)) {
			t.Errorf("%v: file %q data-dir %q err %v", tc.args, file, *dd, err)
		}
	}
}

func newTestFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

package raftkv

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.DataDir, c.NodeID = "/var/lib/kedge/raft", "n1"
		return c
	}
	if err := func() *Config { c := valid(); return &c }().Validate(); err != nil {
		t.Fatalf("defaults with DataDir and NodeID: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no data dir", func(c *Config) { c.DataDir = "" }, "DataDir"},
		{"no node id", func(c *Config) { c.NodeID = "" }, "NodeID"},
		{"bad bind", func(c *Config) { c.BindAddr = "nope" }, "BindAddr"},
		{"bad advertise", func(c *Config) { c.AdvertiseAddr = "x:y:z" }, "AdvertiseAddr"},
		{"zero heartbeat", func(c *Config) { c.HeartbeatTimeout = 0 }, "HeartbeatTimeout"},
		{"lease above heartbeat", func(c *Config) { c.LeaderLeaseTimeout = 2 * c.HeartbeatTimeout }, "LeaderLeaseTimeout"},
		{"max append", func(c *Config) { c.MaxAppendEntries = 5000 }, "MaxAppendEntries"},
		{"synchronous", func(c *Config) { c.RaftDBSynchronous = "OFF" }, "RaftDBSynchronous"},
		{"keep revisions", func(c *Config) { c.CompactKeepRevisions = 0 }, "CompactKeepRevisions"},
		{"keep duration", func(c *Config) { c.CompactKeepDuration = -time.Second }, "CompactKeepDuration"},
		{"compact interval", func(c *Config) { c.CompactInterval = 0 }, "CompactInterval"},
		{"watch buffer", func(c *Config) { c.WatchBufferSize = 0 }, "WatchBufferSize"},
		{"snapshot retain", func(c *Config) { c.SnapshotRetain = 0 }, "SnapshotRetain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func TestCompactTarget(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	samples := []revSample{{t0, 100}, {t0.Add(time.Minute), 500}, {t0.Add(2 * time.Minute), 2000}, {t0.Add(3 * time.Minute), 2500}}
	tests := []struct {
		name                 string
		now                  time.Time
		rev, compacted, keep int64
		keepFor              time.Duration
		want                 int64
		ok                   bool
		kept                 int
	}{
		{"revisions only", t0, 5000, 0, 1000, 0, 4000, true, 4},
		{"nothing beyond keep", t0, 900, 0, 1000, 0, 0, false, 4},
		{"already compacted", t0, 5000, 4000, 1000, 0, 0, false, 4},
		{"time limits", t0.Add(3*time.Minute + 30*time.Second), 3000, 0, 1000, 2 * time.Minute, 500, true, 3},
		{"revisions limit before time", t0.Add(10 * time.Minute), 3000, 0, 1000, 2 * time.Minute, 2000, true, 1},
		{"no sample old enough", t0.Add(30 * time.Second), 3000, 0, 10, 2 * time.Minute, 0, false, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, kept, ok := compactTarget(tc.now, tc.rev, tc.compacted, tc.keep, tc.keepFor, samples)
			if got != tc.want || ok != tc.ok || len(kept) != tc.kept {
				t.Fatalf("got %d %v (%d samples kept), want %d %v (%d)", got, ok, len(kept), tc.want, tc.ok, tc.kept)
			}
		})
	}
}

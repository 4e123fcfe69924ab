package runtime

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/cgroups"
)

func TestNetDevStats(t *testing.T) {
	const dev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  123456     100    0    0    0     0          0         0   123456     100    0    0    0     0       0          0
  eth0:    1000      10    1    0    0     0          0         0     2000      20    2    0    0     0       0          0
  eth1:     500       5    0    0    0     0          0         0      250       3    0    0    0     0       0          0
`
	p := filepath.Join(t.TempDir(), "dev")
	if err := os.WriteFile(p, []byte(dev), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := netDevStats(p)
	if err != nil {
		t.Fatal(err)
	}
	want := NetworkStats{RxBytes: 1500, TxBytes: 2250, RxPackets: 15, TxPackets: 23, RxErrors: 1, TxErrors: 2}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, err := netDevStats(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestWorkingSet(t *testing.T) {
	tests := []struct {
		name      string
		usage     uint64
		stats     map[string]uint64
		v2        bool
		wantUsage uint64
		wantWS    uint64
	}{
		{"v1", 1000, map[string]uint64{"total_inactive_file": 300, "inactive_file": 999}, false, 1000, 700},
		{"v2", 1000, map[string]uint64{"inactive_file": 100}, true, 1000, 900},
		{"inactive above usage", 100, map[string]uint64{"total_inactive_file": 300}, false, 100, 0},
	}
	for _, tc := range tests {
		u, ws := workingSet(cgroups.MemoryStats{Usage: cgroups.MemoryData{Usage: tc.usage}, Stats: tc.stats}, tc.v2)
		if u != tc.wantUsage || ws != tc.wantWS {
			t.Errorf("%s: usage %d ws %d, want %d %d", tc.name, u, ws, tc.wantUsage, tc.wantWS)
		}
	}
}

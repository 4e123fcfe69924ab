package images

import (
	"reflect"
	"testing"
	"time"
)

func TestPlanGC(t *testing.T) {
	t0 := time.Unix(1000, 0)
	imgs := []GCCandidate{
		{ID: "new", Size: 10, LastUsed: t0.Add(3 * time.Hour)},
		{ID: "old", Size: 10, LastUsed: t0},
		{ID: "running", Size: 50, LastUsed: t0.Add(-time.Hour), InUse: true},
		{ID: "mid", Size: 10, LastUsed: t0.Add(time.Hour)},
	}
	tests := []struct {
		name  string
		usage DiskUsage
		want  []string
	}{
		{"below the high threshold", DiskUsage{Total: 100, Used: 85}, nil},
		{"just above: oldest unused first", DiskUsage{Total: 100, Used: 86}, []string{"old"}},
		{"far above: until the low threshold", DiskUsage{Total: 100, Used: 99}, []string{"old", "mid"}},
		{"never the image in use", DiskUsage{Total: 100, Used: 140}, []string{"old", "mid", "new"}},
		{"unknown filesystem size", DiskUsage{}, nil},
	}
	for _, tt := range tests {
		if got := PlanGC(tt.usage, imgs, 85, 80); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

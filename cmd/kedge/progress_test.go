package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestProgressLine(t *testing.T) {
	tests := []struct {
		done, total int64
		bar         bool
		want        string
	}{
		{0, 2048, true, "r [>                             ]   0% 0 B/2.0 KiB"},
		{1024, 2048, true, "r [===============>              ]  50% 1.0 KiB/2.0 KiB"},
		{2048, 2048, true, "r [==============================] 100% 2.0 KiB/2.0 KiB"},
		{1024, 2048, false, "  r: downloaded  50% 1.0 KiB/2.0 KiB"},
	}
	for _, tt := range tests {
		if got := progressLine("r", tt.done, tt.total, tt.bar); got != tt.want {
			t.Errorf("progressLine(%d, %d, %v) = %q, want %q", tt.done, tt.total, tt.bar, got, tt.want)
		}
	}
}

func TestProgressNotTTY(t *testing.T) {
	var buf bytes.Buffer
	p := newPullProgress(&buf, "r")
	p.update(10, 100) // within the interval: no line yet
	if buf.Len() != 0 {
		t.Errorf("printed early: %q", buf.String())
	}
	p.last = p.last.Add(-progressInterval)
	p.update(50, 100)
	p.finish()
	if got := buf.String(); got != "  r: downloaded  50% 50 B/100 B\n  r: downloaded  50% 50 B/100 B\n" || strings.Contains(got, "\r") {
		t.Errorf("output %q", got)
	}
}

package gcheadroom

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	cfg := Config{Low: 50, High: 100, Budget: 0.02}
	tests := []struct {
		name  string
		cur   int
		gcCPU float64
		want  int
	}{
		{"idle at high goes low", 100, 0.001, 50},
		{"light load at high: 0.9% would be 1.8% at low", 100, 0.009, 50},
		{"at high, low would cost 2.4%: stays", 100, 0.012, 100},
		{"at high, low would cost 4%: stays high", 100, 0.02, 100},
		{"at low within budget stays", 50, 0.019, 50},
		{"at low within the hysteresis band stays", 50, 0.025, 50},
		{"at low above 1.5x budget goes high", 50, 0.031, 100},
		{"busy at low goes high", 50, 0.2, 100},
		{"a setting of neither kind in the band goes high", 75, 0.02, 100},
		{"unknown current setting is taken as high", 0, 0.001, 50},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Decide(cfg, tc.cur, tc.gcCPU); got != tc.want {
				t.Errorf("Decide(cur %d, gcCPU %.3f) = %d, want %d", tc.cur, tc.gcCPU, got, tc.want)
			}
		})
	}
}

// The metrics Run reads exist in this runtime (a renamed one would read as
// zero and keep the headroom low under any load), and Run moves an idle
// process to Low and leaves High in force when it ends.
func TestRunIdleGoesLow(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, name := range gcCPUMetrics {
		found := false
		for _, d := range metricsAll() {
			found = found || d == name
		}
		if !found {
			t.Fatalf("runtime/metrics has no %s", name)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Config{Interval: 20 * time.Millisecond, Low: 30, High: 90})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for gcPercent() != 30 {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC %d after 5s idle, want 30", gcPercent())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if p := gcPercent(); p != 90 {
		t.Fatalf("GOGC %d after Run ended, want 90 (High)", p)
	}
}

// Under a load whose collection costs more than the budget, Run keeps
// High.
func TestRunBusyStaysHigh(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	ctx, cancel := context.WithCancel(context.Background())
	stop := make(chan struct{})
	go func() { // allocate as fast as one goroutine can, keeping 8 MB live
		live := make([][]byte, 1024)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			live[i%len(live)] = make([]byte, 8<<10)
		}
	}()
	defer close(stop)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Config{Interval: 50 * time.Millisecond, Low: 30, High: 90, Budget: 0.001})
	}()
	lows := 0
	for range 40 {
		time.Sleep(25 * time.Millisecond)
		if gcPercent() == 30 {
			lows++
		}
	}
	cancel()
	<-done
	if lows > 4 {
		t.Fatalf("GOGC was Low in %d of 40 samples under load", lows)
	}
	runtime.GC()
}

func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func metricsAll() []string {
	var names []string
	for _, d := range metrics.All() {
		names = append(names, d.Name)
	}
	return names
}

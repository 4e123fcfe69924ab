// Package gcheadroom sizes the garbage collector's heap headroom (GOGC) to
// the load a process is under.
//
// The Go runtime lets the heap grow by GOGC percent of what is live before
// it collects. That headroom is memory the process holds only to spend
// less CPU on collection. Under load the trade is worth it; at light load
// the collector costs next to nothing either way, and on a box with 1 GB
// of memory the headroom is better given back. So Run measures the
// CPU the collector spent over the last interval, estimates what it would
// cost with the small headroom, and uses the small one while that stays
// within a budget (a fraction of one core), the large one otherwise.
//
// The decision (Decide) is pure; Run applies it with
// debug.SetGCPercent.
package gcheadroom

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Config says between which headroom settings to choose and how much
// collector CPU the small one may cost.
type Config struct {
	// Low and High are the GOGC values to choose from (defaults 50, 100).
	Low, High int
	// Budget is the collector CPU, as a fraction of one core, that Low
	// may cost (default 0.02). Above 1.5 times it, High is used.
	Budget float64
	// Interval between measurements (default 2s).
	Interval time.Duration
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Low == 0 {
		c.Low = 50
	}
	if c.High == 0 {
		c.High = 100
	}
	if c.Budget == 0 {
		c.Budget = 0.02
	}
	if c.Interval == 0 {
		c.Interval = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Decide returns the GOGC for the next interval, given the one in force
// (cur) and the collector's CPU over the last interval as a fraction of
// one core (gcCPU). For the same allocations, the collector's work is
// about inversely proportional to the headroom (it runs that much more
// often), so at Low it costs gcCPU*cur/Low. Between Budget and 1.5 times
// Budget the setting stays as it is, so that a load near the line does not
// flip it at every interval.
func Decide(cfg Config, cur int, gcCPU float64) int {
	cfg.setDefaults()
	if cur <= 0 {
		cur = cfg.High
	}
	atLow := gcCPU * float64(cur) / float64(cfg.Low)
	switch {
	case atLow <= cfg.Budget:
		return cfg.Low
	case atLow > 1.5*cfg.Budget:
		return cfg.High
	case cur != cfg.Low && cur != cfg.High:
		return cfg.High
	default:
		return cur
	}
}

// gcCPUMetrics are the collector's CPU, without the marking done on
// otherwise idle processors (free for this process, and counted against
// no one else's).
var gcCPUMetrics = []string{
	"/cpu/classes/gc/mark/assist:cpu-seconds",
	"/cpu/classes/gc/mark/dedicated:cpu-seconds",
	"/cpu/classes/gc/pause:cpu-seconds",
}

// gcCPUSeconds reads the collector's CPU so far.
func gcCPUSeconds(samples []metrics.Sample) float64 {
	metrics.Read(samples)
	var s float64
	for _, m := range samples {
		if m.Value.Kind() == metrics.KindFloat64 {
			s += m.Value.Float64()
		}
	}
	return s
}

// Run sets GOGC every Interval as Decide says, starting with High, until
// ctx ends; then it leaves High in force. Do not use it when the user set
// GOGC.
func Run(ctx context.Context, cfg Config) {
	cfg.setDefaults()
	samples := make([]metrics.Sample, len(gcCPUMetrics))
	for i, name := range gcCPUMetrics {
		samples[i].Name = name
	}
	cur := cfg.High
	debug.SetGCPercent(cur)
	defer debug.SetGCPercent(cfg.High)
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	last, lastAt := gcCPUSeconds(samples), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s := gcCPUSeconds(samples)
			frac := (s - last) / now.Sub(lastAt).Seconds()
			last, lastAt = s, now
			if next := Decide(cfg, cur, frac); next != cur {
				cfg.Logger.Debug("garbage collector headroom", "gogc", next, "was", cur, "gcCPU", frac)
				debug.SetGCPercent(next)
				cur = next
			}
		}
	}
}

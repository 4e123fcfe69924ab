package linearize

import (
	"context"
	"errors"
	"fmt"

	"math/rand/v2"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// ErrNotApplied marks a failed write or CAS that certainly changed nothing
// (the request was never sent, or its read half failed). Clients wrap it;
// any other error leaves the outcome unknown.
var ErrNotApplied = errors.New("operation not applied")

// Client performs operations on one endpoint. Record calls each Client from
// one goroutine only.
type Client interface {
	// Read returns the key's value, "" when it does not exist.
	Read(ctx context.Context, key string) (string, error)
	// Write sets the key's value unconditionally.
	Write(ctx context.Context, key, value string) error
	// CAS reads the key and writes value only if the key is unchanged
	// since that read; it returns the value read and whether it wrote.
	CAS(ctx context.Context, key, value string) (old string, swapped bool, err error)
}

// Config shapes a recording.
type Config struct {
	// Keys are the registers operated on (default 4 keys).
	Keys []string
	// Duration of the recording.
	Duration time.Duration
	// ReadPercent and WritePercent of operations; the rest are CAS
	// (defaults 40 and 30).
	ReadPercent, WritePercent int
	// OpTimeout bounds one operation (default 5s).
	OpTimeout time.Duration
	// ErrorBackoff is how long a client pauses after a failed operation
	// (default 100ms), so a dead server is not hammered.
	ErrorBackoff time.Duration
	// Seed makes the operation mix reproducible.
	Seed uint64
}

func (c *Config) setDefaults() {
	if len(c.Keys) == 0 {
		c.Keys = []string{"k0", "k1", "k2", "k3"}
	}
	if c.ReadPercent == 0 && c.WritePercent == 0 {
		c.ReadPercent, c.WritePercent = 40, 30
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = 5 * time.Second
	}
	if c.ErrorBackoff == 0 {
		c.ErrorBackoff = 100 * time.Millisecond
	}
}

// History is a recorded history.
type History struct {
	// Ops are the operations kept for checking.
	Ops []porcupine.Operation
	// Dropped counts failed reads and writes known not to have applied.
	Dropped int
	// Completed counts operations that returned a definite result.
	Completed int
}

// Record runs one goroutine per client until cfg.Duration passes or ctx
// ends, and returns the merged history.
func Record(ctx context.Context, cfg Config, clients []Client) History {
	cfg.setDefaults()
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	var (
		mu sync.Mutex
		h  History
		wg sync.WaitGroup
	)
	var unknown []porcupine.Operation
	for id, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(cfg.Seed, uint64(id)))
			for seq := 0; ctx.Err() == nil; seq++ {
				key := cfg.Keys[rng.IntN(len(cfg.Keys))]
				value := fmt.Sprintf("c%d-%d", id, seq)
				op, keep, failed := runOne(ctx, cfg, c, rng.IntN(100), key, value, now)
				op.ClientId = id
				mu.Lock()
				switch {
				case !keep:
					h.Dropped++
				case op.Output.(Output).Unknown:
					unknown = append(unknown, op)
				default:
					h.Ops = append(h.Ops, op)
					h.Completed++
				}
				mu.Unlock()
				if failed {
					select {
					case <-ctx.Done():
					case <-time.After(cfg.ErrorBackoff):
					}
				}
			}
		}()
	}
	wg.Wait()
	// Unknown outcomes return "after everything": the checker may then
	// linearize them at any point after their call, or at the very end.
	end := now()
	for i := range unknown {
		unknown[i].Return = end + int64(i) + 1
	}
	h.Ops = append(h.Ops, unknown...)
	return h
}

// runOne performs one operation. keep is false when the operation must be
// dropped; failed is true when it returned an error.
func runOne(ctx context.Context, cfg Config, c Client, dice int, key, value string, now func() int64) (op porcupine.Operation, keep, failed bool) {
	octx, cancel := context.WithTimeout(ctx, cfg.OpTimeout)
	defer cancel()
	op.Call = now()
	switch {
	case dice < cfg.ReadPercent:
		v, err := c.Read(octx, key)
		op.Return = now()
		op.Input, op.Output = Input{Kind: KindRead, Key: key}, Output{Value: v}
		return op, err == nil, err != nil
	case dice < cfg.ReadPercent+cfg.WritePercent:
		err := c.Write(octx, key, value)
		op.Return = now()
		op.Input, op.Output = Input{Kind: KindWrite, Key: key, Value: value}, Output{Unknown: err != nil}
		return op, !errors.Is(err, ErrNotApplied), err != nil
	default:
		old, swapped, err := c.CAS(octx, key, value)
		op.Return = now()
		op.Input = Input{Kind: KindCAS, Key: key, Value: value, Old: old}
		op.Output = Output{Swapped: swapped, Unknown: err != nil}
		return op, !errors.Is(err, ErrNotApplied), err != nil
	}
}

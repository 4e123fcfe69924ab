package linearize

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func TestStep(t *testing.T) {
	tests := []struct {
		name  string
		state string
		in    Input
		out   Output
		ok    bool
		next  string
	}{
		{"read current", "a", Input{Kind: KindRead}, Output{Value: "a"}, true, "a"},
		{"read stale", "b", Input{Kind: KindRead}, Output{Value: "a"}, false, "b"},
		{"write", "a", Input{Kind: KindWrite, Value: "b"}, Output{}, true, "b"},
		{"unknown write", "a", Input{Kind: KindWrite, Value: "b"}, Output{Unknown: true}, true, "b"},
		{"cas swaps", "a", Input{Kind: KindCAS, Old: "a", Value: "b"}, Output{Swapped: true}, true, "b"},
		{"cas swapped on wrong value", "x", Input{Kind: KindCAS, Old: "a", Value: "b"}, Output{Swapped: true}, false, "b"},
		{"cas fails", "x", Input{Kind: KindCAS, Old: "a", Value: "b"}, Output{}, true, "x"},
		{"cas failed on right value", "a", Input{Kind: KindCAS, Old: "a", Value: "b"}, Output{}, false, "a"},
		{"unknown cas applies", "a", Input{Kind: KindCAS, Old: "a", Value: "b"}, Output{Unknown: true}, true, "b"},
		{"unknown cas cannot apply", "x", Input{Kind: KindCAS, Old: "a", Value: "b"}, Output{Unknown: true}, true, "x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, next := step(tc.state, tc.in, tc.out)
			if ok != tc.ok || (ok && next != tc.next) {
				t.Fatalf("step = %v, %q; want %v, %q", ok, next, tc.ok, tc.next)
			}
		})
	}
}

func op(client int, call, ret int64, in Input, out Output) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: in, Output: out}
}

func TestCheckHistories(t *testing.T) {
	w := func(v string) Input { return Input{Kind: KindWrite, Key: "k", Value: v} }
	r := Input{Kind: KindRead, Key: "k"}
	tests := []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"sequential", []porcupine.Operation{
			op(0, 0, 1, w("a"), Output{}), op(1, 2, 3, r, Output{Value: "a"}),
		}, porcupine.Ok},
		{"stale read after a completed write", []porcupine.Operation{
			op(0, 0, 1, w("a"), Output{}), op(0, 2, 3, w("b"), Output{}), op(1, 4, 5, r, Output{Value: "a"}),
		}, porcupine.Illegal},
		{"concurrent read may see either", []porcupine.Operation{
			op(0, 0, 1, w("a"), Output{}), op(0, 2, 6, w("b"), Output{}), op(1, 3, 4, r, Output{Value: "a"}),
		}, porcupine.Ok},
		{"lost acknowledged write", []porcupine.Operation{
			op(0, 0, 1, w("a"), Output{}), op(1, 2, 3, r, Output{Value: ""}),
		}, porcupine.Illegal},
		{"unknown write seen later", []porcupine.Operation{
			op(0, 0, 100, w("a"), Output{Unknown: true}), op(1, 2, 3, r, Output{Value: "a"}),
		}, porcupine.Ok},
		{"unknown write never seen", []porcupine.Operation{
			op(0, 0, 100, w("a"), Output{Unknown: true}), op(1, 2, 3, r, Output{Value: ""}),
		}, porcupine.Ok},
		{"value read before it was written", []porcupine.Operation{
			op(1, 0, 1, r, Output{Value: "a"}), op(0, 2, 3, w("a"), Output{}),
		}, porcupine.Illegal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Check(History{Ops: tc.ops}, 10*time.Second); got.Verdict != tc.want {
				t.Fatalf("verdict %s, want %s", got.Verdict, tc.want)
			}
		})
	}
}

// memRegisters is a correct in-memory store; staleReads makes every other
// read return the value before the last write (a broken replica).
type memRegisters struct {
	mu         sync.Mutex
	cur, prev  map[string]string
	staleReads bool
	n          int
}

func (m *memRegisters) Read(_ context.Context, key string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	if m.staleReads && m.n%2 == 0 {
		return m.prev[key], nil
	}
	return m.cur[key], nil
}

func (m *memRegisters) Write(_ context.Context, key, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prev[key], m.cur[key] = m.cur[key], value
	return nil
}

func (m *memRegisters) CAS(_ context.Context, key, value string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.cur[key]
	m.prev[key], m.cur[key] = old, value
	return old, true, nil
}

func TestRecordAndCheck(t *testing.T) {
	for _, stale := range []bool{false, true} {
		m := &memRegisters{cur: map[string]string{}, prev: map[string]string{}, staleReads: stale}
		clients := []Client{m, m, m, m}
		h := Record(context.Background(), Config{Duration: 200 * time.Millisecond, Seed: 1}, clients)
		if h.Completed < 100 {
			t.Fatalf("only %d operations completed", h.Completed)
		}
		res := Check(h, 30*time.Second)
		want := porcupine.Ok
		if stale {
			want = porcupine.Illegal
		}
		if res.Verdict != want {
			t.Fatalf("staleReads=%v: verdict %s over %d ops, want %s", stale, res.Verdict, res.Ops, want)
		}
	}
}

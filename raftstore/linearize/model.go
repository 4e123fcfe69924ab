package linearize

import (
	"fmt"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// Kind is an operation's kind.
type Kind int

// Operation kinds.
const (
	KindRead Kind = iota + 1
	KindWrite
	KindCAS
)

// Input is what a client asked for.
type Input struct {
	Kind Kind
	Key  string
	// Value is the value written (KindWrite, KindCAS).
	Value string
	// Old is the value a CAS expected (read at the start of the operation).
	Old string
}

// Output is what a client observed.
type Output struct {
	// Value read (KindRead).
	Value string
	// Swapped is a CAS's result.
	Swapped bool
	// Unknown: the write or CAS failed in a way that leaves its outcome
	// unknown.
	Unknown bool
}

// registerModel is one register per key; the state is the current value
// ("" before the first write).
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(Input).Key
			byKey[k] = append(byKey[k], op)
		}
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		return step(state.(string), input.(Input), output.(Output))
	},
	Equal: func(a, b any) bool { return a.(string) == b.(string) },
	DescribeOperation: func(input, output any) string {
		in, out := input.(Input), output.(Output)
		res := ""
		switch {
		case out.Unknown:
			res = " → ?"
		case in.Kind == KindCAS:
			res = fmt.Sprintf(" → %v", out.Swapped)
		}
		switch in.Kind {
		case KindRead:
			return fmt.Sprintf("get(%s) → %q", in.Key, out.Value)
		case KindWrite:
			return fmt.Sprintf("put(%s, %q)%s", in.Key, in.Value, res)
		default:
			return fmt.Sprintf("cas(%s, %q → %q)%s", in.Key, in.Old, in.Value, res)
		}
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%q", state) },
}

// step is the register's sequential specification.
func step(state string, in Input, out Output) (bool, string) {
	switch in.Kind {
	case KindRead:
		return out.Value == state, state
	case KindWrite:
		return true, in.Value
	case KindCAS:
		if out.Unknown {
			// Linearized here it took effect iff it could; "never
			// happened" is the linearization at the end of the history.
			if state == in.Old {
				return true, in.Value
			}
			return true, state
		}
		if out.Swapped {
			return state == in.Old, in.Value
		}
		return state != in.Old, state
	}
	return false, state
}

// Result is the checker's verdict on a history.
type Result struct {
	// Verdict is porcupine's: Ok, Illegal, or Unknown (timed out).
	Verdict porcupine.CheckResult
	// Ops counts operations checked; Unknown counts those with an unknown
	// outcome.
	Ops, UnknownOps int
	// Info allows a visualization of an Illegal history
	// (porcupine.VisualizePath).
	Info porcupine.LinearizationInfo
}

// Check checks h for linearizability against one register per key, giving
// up after timeout (Verdict Unknown).
func Check(h History, timeout time.Duration) Result {
	verdict, info := porcupine.CheckOperationsVerbose(registerModel, h.Ops, timeout)
	r := Result{Verdict: verdict, Ops: len(h.Ops), Info: info}
	for _, op := range h.Ops {
		if op.Output.(Output).Unknown {
			r.UnknownOps++
		}
	}
	return r
}

// Visualize writes an HTML visualization of a checked history to path.
func Visualize(r Result, path string) error {
	return porcupine.VisualizePath(registerModel, r.Info, path)
}

package raftkv

import "runtime"

func countGoroutines() int { return runtime.NumGoroutine() }

package podsync

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Default back-off parameters, Kubernetes' values.
const (
	DefaultBackoffInitial = 10 * time.Second
	DefaultBackoffMax     = 5 * time.Minute
)

// Backoff tracks the restart back-off of containers, keyed by BackoffKey.
// It follows kubelet's flowcontrol.Backoff: the first restart after a crash
// is immediate, each later one waits twice as long as the one before
// (Initial, 2×Initial, ... up to Max), measured from the instance's exit; an
// entry not touched for 2×Max (a container that ran that long) starts over.
// Time is always passed in, so tests need no clock.
type Backoff struct {
	Initial, Max time.Duration
	entries      map[string]*backoffEntry
}

type backoffEntry struct {
	delay      time.Duration
	lastUpdate time.Time
}

// NewBackoff returns a Backoff with the given initial and maximum delay.
func NewBackoff(initial, max time.Duration) *Backoff {
	return &Backoff{Initial: initial, Max: max, entries: map[string]*backoffEntry{}}
}

// BackoffKey names a container of a pod in a Backoff.
func BackoffKey(pod *corev1.Pod, container string) string {
	return string(pod.UID) + "/" + container
}

func (b *Backoff) expired(e *backoffEntry, now time.Time) bool {
	return now.Sub(e.lastUpdate) > 2*b.Max
}

// Wait returns how much longer a restart of key must wait when its last
// instance exited at finishedAt, and the current delay (for messages).
// A zero wait means the restart may happen now.
func (b *Backoff) Wait(key string, finishedAt, now time.Time) (wait, delay time.Duration) {
	e, ok := b.entries[key]
	if !ok || b.expired(e, now) {
		return 0, 0
	}
	if left := e.delay - now.Sub(finishedAt); left > 0 {
		return left, e.delay
	}
	return 0, e.delay
}

// Next records a restart of key at now, growing its delay.
func (b *Backoff) Next(key string, now time.Time) {
	e, ok := b.entries[key]
	if !ok || b.expired(e, now) {
		b.entries[key] = &backoffEntry{delay: b.Initial, lastUpdate: now}
		return
	}
	e.delay = min(2*e.delay, b.Max)
	e.lastUpdate = now
}

// Forget drops every entry whose key starts with prefix (a pod's UID + "/").
func (b *Backoff) Forget(prefix string) {
	for k := range b.entries {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			delete(b.entries, k)
		}
	}
}

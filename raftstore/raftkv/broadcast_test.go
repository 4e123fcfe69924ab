package raftkv

import (
	"fmt"
	"testing"

	"kedge.dev/kedge/raftstore"
)

func events(from, to int) []raftstore.Event {
	var evs []raftstore.Event
	for i := from; i <= to; i++ {
		evs = append(evs, raftstore.Event{KV: raftstore.KeyValue{Key: fmt.Sprintf("/a/%d", i), ModRevision: int64(i)}})
	}
	return evs
}

// drain takes what waits in s, in order.
func drain(s *subscription) (revs []int64, ended bool) {
	for {
		ev, ok, end := s.next()
		if !ok {
			return revs, end
		}
		revs = append(revs, ev.KV.ModRevision)
	}
}

// A subscriber gets the events under its prefix in order, holds memory only
// for what it has yet to take, and is dropped when it lags by its limit:
// what was queued is still delivered, then its feed ends.
func TestBroadcasterQueue(t *testing.T) {
	b := newBroadcaster()
	s := b.subscribe("/a/", 3)
	other := b.subscribe("/b/", 3)
	b.publish(events(1, 2))
	select {
	case <-s.ready:
	default:
		t.Fatal("no wake-up after a publish")
	}
	if revs, ended := drain(s); fmt.Sprint(revs) != "[1 2]" || ended {
		t.Fatalf("got %v (ended %v), want [1 2] and a live feed", revs, ended)
	}
	if cap(s.queue) != 0 {
		t.Fatalf("drained queue keeps capacity %d", cap(s.queue))
	}
	if revs, _ := drain(other); len(revs) != 0 {
		t.Fatalf("subscriber of /b/ got %v", revs)
	}

	b.publish(events(3, 7)) // 5 events, limit 3: dropped at the 4th
	if _, ok := b.subs[s]; ok {
		t.Fatal("a subscriber lagging by its limit is still subscribed")
	}
	if revs, ended := drain(s); fmt.Sprint(revs) != "[3 4 5]" || !ended {
		t.Fatalf("got %v (ended %v), want [3 4 5] and the end", revs, ended)
	}
	b.publish(events(8, 8))
	if revs, ended := drain(s); len(revs) != 0 || !ended {
		t.Fatalf("after the drop: %v (ended %v)", revs, ended)
	}

	b.close()
	if revs, ended := drain(other); len(revs) != 0 || !ended {
		t.Fatalf("after close: %v (ended %v)", revs, ended)
	}
	if b.subscribe("/a/", 3) != nil {
		t.Fatal("subscribed to a closed broadcaster")
	}
}

package api

import (
	"sync"

	"kedge.dev/kedge/raftstore"
)

// encodedHere remembers which stored values this server encoded itself
// (key → mod revision of the write). Such a value is exactly what
// json.Marshal of the object wrote, so decoding it and encoding it again
// gives the same bytes: it can be sent as it is (with the resourceVersion
// spliced in) and compared as it is, without that work. A value another
// server or another kedge version wrote is decoded as before, because its
// encoding may differ from this binary's.
//
// Bounded: past maxEncodedHere entries an arbitrary one is forgotten (map
// iteration order), which only sends that key down the decoding path.
// Safe for concurrent use.
type encodedHere struct {
	mu   sync.Mutex
	revs map[string]int64
}

const maxEncodedHere = 8192

func newEncodedHere() *encodedHere { return &encodedHere{revs: map[string]int64{}} }

// add records that kv was written with bytes this server encoded.
func (e *encodedHere) add(kv raftstore.KeyValue) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.revs[kv.Key]; !ok && len(e.revs) >= maxEncodedHere {
		for k := range e.revs {
			delete(e.revs, k)
			break
		}
	}
	e.revs[kv.Key] = kv.ModRevision
}

// has reports whether kv holds bytes this server encoded.
func (e *encodedHere) has(kv raftstore.KeyValue) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	rev, ok := e.revs[kv.Key]
	return ok && rev == kv.ModRevision
}

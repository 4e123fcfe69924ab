package raftkv

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"kedge.dev/kedge/raftstore"
)

func benchStore(b *testing.B, keys int) *Store {
	s := openT(b, testConfig(b, b.TempDir()))
	ctx := context.Background()
	for i := 0; i < keys; i++ {
		if _, err := s.Create(ctx, fmt.Sprintf("/registry/pods/ns/pod-%05d", i), make([]byte, 1024)); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkCreateParallel(b *testing.B) {
	s := benchStore(b, 0)
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Create(context.Background(), fmt.Sprintf("/k/%d", n.Add(1)), make([]byte, 1024)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkGet(b *testing.B) {
	s := benchStore(b, 1000)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Get(context.Background(), fmt.Sprintf("/registry/pods/ns/pod-%05d", i%1000)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkListPage(b *testing.B) {
	s := benchStore(b, 1000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := s.List(context.Background(), "/registry/pods/", raftstore.ListOptions{Limit: 100})
		if err != nil || len(res.KVs) != 100 {
			b.Fatal(err)
		}
	}
}

func BenchmarkListAll(b *testing.B) {
	s := benchStore(b, 1000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := s.List(context.Background(), "/registry/pods/", raftstore.ListOptions{})
		if err != nil || len(res.KVs) != 1000 {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetUpdateParallel is the API server's write pattern under
// load: 16 writers each read a key and write it back conditionally on the
// mod revision read (Kubernetes' GuaranteedUpdate), with 1 KiB values.
func BenchmarkGetUpdateParallel(b *testing.B) {
	for _, linearizable := range []bool{false, true} {
		b.Run(fmt.Sprintf("linearizable=%v", linearizable), func(b *testing.B) { benchGetUpdate(b, linearizable) })
	}
}

func benchGetUpdate(b *testing.B, linearizable bool) {
	const keys = 128
	cfg := testConfig(b, b.TempDir())
	cfg.LinearizableReads = linearizable // as kedge server runs it
	s := openT(b, cfg)
	for i := 0; i < keys; i++ {
		if _, err := s.Create(context.Background(), fmt.Sprintf("/registry/pods/ns/pod-%05d", i), make([]byte, 1024)); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	value := make([]byte, 1024)
	b.SetParallelism(8) // × GOMAXPROCS goroutines
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := fmt.Sprintf("/registry/pods/ns/pod-%05d", n.Add(1)%keys)
			kv, err := s.Get(context.Background(), key)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := s.Update(context.Background(), key, value, kv.ModRevision); err != nil && !errors.Is(err, raftstore.ErrConflict) {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkClusterPut measures puts into a three-server cluster with the
// default commit timeout, through the leader and through a follower, by 1
// and 16 concurrent writers. A write through a follower returns once that
// follower applied it, so how soon a follower learns the new commit index
// shows here (hashicorp/raft sends it with the next append, or after
// CommitTimeout when no append follows).
func BenchmarkClusterPut(b *testing.B) {
	stores := testCluster(b, 3, func(_ int, c *Config) {
		c.CommitTimeout = DefaultConfig().CommitTimeout
	})
	leader, followers := leaderOf(b, stores...)
	for _, via := range []struct {
		name string
		s    *Store
	}{{"leader", leader}, {"follower", followers[0]}} {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("via=%s/writers=%d", via.name, writers), func(b *testing.B) {
				ctx := context.Background()
				keys := make([]string, writers)
				for i := range keys {
					keys[i] = fmt.Sprintf("/bench/%s/%d/%d", via.name, writers, i)
					// The body runs once per b.N tried: the keys may exist.
					if _, err := via.s.Create(ctx, keys[i], make([]byte, 1024)); err != nil && !errors.Is(err, raftstore.ErrKeyExists) {
						b.Fatal(err)
					}
				}
				// Exactly writers goroutines share b.N (RunParallel would
				// round to a multiple of GOMAXPROCS, and one writer alone
				// is the case that waits for the commit index).
				var left atomic.Int64
				left.Store(int64(b.N))
				b.ResetTimer()
				var wg sync.WaitGroup
				for _, key := range keys {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for left.Add(-1) >= 0 {
							if _, err := via.s.Update(ctx, key, make([]byte, 1024), 0); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
			})
		}
	}
}

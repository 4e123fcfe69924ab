package raftkv

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"kedge.dev/kedge/raftstore"
	"kedge.dev/kedge/raftstore/statedb"
)

// readBarrier is what every read waits for before it reads state.db. With
// local reads (the default) it returns at once: on a single voter the local
// state is the committed state. With LinearizableReads it confirms with a
// quorum that this server still leads, after making sure a barrier of the
// current term was applied. Together that is linearizable: every write
// acknowledged before the read started was either applied by this leader's
// FSM before its future returned, or came from an earlier term and is covered
// by the barrier.
func (s *Store) readBarrier(ctx context.Context) error {
	if !s.cfg.LinearizableReads {
		return nil
	}
	if err := waitFuture(ctx, s.raft.VerifyLeader()); err != nil {
		return fmt.Errorf("linearizable read: %w", err)
	}
	term := s.raft.CurrentTerm()
	if s.barrierTerm.Load() == term {
		return nil
	}
	if err := waitFuture(ctx, s.raft.Barrier(0)); err != nil {
		return fmt.Errorf("linearizable read: barrier: %w", err)
	}
	s.barrierTerm.Store(term)
	return nil
}

// Get returns the current value of key.
func (s *Store) Get(ctx context.Context, key string) (raftstore.KeyValue, error) {
	if err := s.gate.enter(); err != nil {
		return raftstore.KeyValue{}, fmt.Errorf("get %q: %w", key, err)
	}
	defer s.gate.exit()
	if err := s.readBarrier(ctx); err != nil {
		return raftstore.KeyValue{}, fmt.Errorf("get %q: %w", key, err)
	}
	return s.db.Get(ctx, key)
}

// List returns one page of the keys under prefix.
func (s *Store) List(ctx context.Context, prefix string, opts raftstore.ListOptions) (raftstore.ListResult, error) {
	if err := s.gate.enter(); err != nil {
		return raftstore.ListResult{}, fmt.Errorf("list %q: %w", prefix, err)
	}
	defer s.gate.exit()
	if err := s.readBarrier(ctx); err != nil {
		return raftstore.ListResult{}, fmt.Errorf("list %q: %w", prefix, err)
	}
	return s.db.List(ctx, prefix, opts)
}

// Revision returns the current revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	if err := s.gate.enter(); err != nil {
		return 0, fmt.Errorf("revision: %w", err)
	}
	defer s.gate.exit()
	if err := s.readBarrier(ctx); err != nil {
		return 0, fmt.Errorf("revision: %w", err)
	}
	return s.db.Revision(), nil
}

// Create stores a new key.
func (s *Store) Create(ctx context.Context, key string, value []byte) (raftstore.KeyValue, error) {
	return s.apply(ctx, statedb.Op{Kind: statedb.OpCreate, Key: key, Value: value})
}

// Update replaces the value of an existing key.
func (s *Store) Update(ctx context.Context, key string, value []byte, expectModRev int64) (raftstore.KeyValue, error) {
	return s.apply(ctx, statedb.Op{Kind: statedb.OpUpdate, Key: key, Value: value, ExpectModRev: expectModRev})
}

// Delete removes key.
func (s *Store) Delete(ctx context.Context, key string, expectModRev int64) (raftstore.KeyValue, error) {
	return s.apply(ctx, statedb.Op{Kind: statedb.OpDelete, Key: key, ExpectModRev: expectModRev})
}

// Compact discards history older than rev.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	_, err := s.apply(ctx, statedb.Op{Kind: statedb.OpCompact, Revision: rev})
	return err
}

// apply is the one place writes enter raft. On the leader it proposes the
// command and waits for the FSM's answer; a follower returns ErrNotLeader
// (forwarding to the leader will hook in here).
func (s *Store) apply(ctx context.Context, op statedb.Op) (raftstore.KeyValue, error) {
	what := opString(op)
	if err := s.gate.enter(); err != nil {
		return raftstore.KeyValue{}, fmt.Errorf("%s: %w", what, err)
	}
	defer s.gate.exit()
	data, err := encodeOp(op)
	if err != nil {
		return raftstore.KeyValue{}, err
	}
	if s.raft.State() != raft.Leader {
		leader, id := s.raft.LeaderWithID()
		return raftstore.KeyValue{}, fmt.Errorf("%s: %w (leader %q at %q)", what, ErrNotLeader, id, leader)
	}
	var timeout time.Duration // 0: wait for room in raft's queue as long as ctx allows
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return raftstore.KeyValue{}, fmt.Errorf("%s: %w", what, context.DeadlineExceeded)
		}
	}
	f := s.raft.Apply(data, timeout)
	if err := waitFuture(ctx, f); err != nil {
		return raftstore.KeyValue{}, fmt.Errorf("%s: %w", what, err)
	}
	resp, ok := f.Response().(*applyResponse)
	if !ok {
		return raftstore.KeyValue{}, fmt.Errorf("%s: unexpected raft response %T", what, f.Response())
	}
	if resp.Err != nil {
		return raftstore.KeyValue{}, resp.Err
	}
	return resp.KV, nil
}

func opString(op statedb.Op) string {
	switch op.Kind {
	case statedb.OpCreate:
		return fmt.Sprintf("create %q", op.Key)
	case statedb.OpUpdate:
		return fmt.Sprintf("update %q", op.Key)
	case statedb.OpDelete:
		return fmt.Sprintf("delete %q", op.Key)
	case statedb.OpCompact:
		return fmt.Sprintf("compact to revision %d", op.Revision)
	}
	return fmt.Sprintf("op %d", op.Kind)
}

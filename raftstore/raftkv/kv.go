package raftkv

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"

	"kedge.dev/kedge/raftstore"
	"kedge.dev/kedge/raftstore/statedb"
)

// readBarrier is what every read waits for before it reads state.db. With
// local reads (the default) it returns at once: on a single voter the local
// state is the committed state, and a follower may lag. With
// LinearizableReads it gets a read index from the leader (leaderReadIndex:
// quorum check plus a barrier of the term) and waits until this server
// applied it: every write acknowledged before the read started is then
// visible, on the leader and on followers alike.
func (s *Store) readBarrier(ctx context.Context) error {
	if !s.cfg.LinearizableReads {
		return nil
	}
	// The leader computes the read index itself, a follower asks the
	// leader; either way the read waits through an election (cluster.go).
	return s.followerRead(ctx)
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

// GetLocal returns key as this server has applied it, without confirming
// with the leader: on a follower, or on a leader that lost its quorum and
// does not know it yet, it may miss a write acknowledged elsewhere. It
// suits a caller that writes back with a compare on the mod revision (the
// leader checks that against the real state) and reads again with Get
// when the compare fails.
func (s *Store) GetLocal(ctx context.Context, key string) (raftstore.KeyValue, error) {
	if err := s.gate.enter(); err != nil {
		return raftstore.KeyValue{}, fmt.Errorf("get %q: %w", key, err)
	}
	defer s.gate.exit()
	return s.db.Get(ctx, key)
}

// List returns one page of the keys under prefix.
func (s *Store) List(ctx context.Context, prefix string, opts raftstore.ListOptions) (raftstore.ListResult, error) {
	if err := s.gate.enter(); err != nil {
		return raftstore.ListResult{}, fmt.Errorf("list %q: %w", prefix, err)
	}
	defer s.gate.exit()
	if opts.Revision > 0 {
		// A revision read elsewhere is served here once applied.
		s.waitRevision(ctx, opts.Revision)
	} else if err := s.readBarrier(ctx); err != nil {
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
// command and waits for the FSM's answer; a follower forwards the encoded
// command to the leader (forward.go), waiting through an election.
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
	// Tagged (settle.go), so that a write whose answer is lost with its
	// leader can still be answered.
	tw := s.tags.register(s.fsm.restores.Load())
	defer s.tags.forget(tw)
	req := fwdRequest{Kind: "apply", Cmd: data, Tag: tw.tag}
	local := func(ctx context.Context) (fwdResponse, error) {
		kv, idx, err := s.applyLocal(ctx, what, data, tw.tag)
		switch {
		case errors.Is(err, raft.ErrNotLeader):
			err = fmt.Errorf("%w: %w", errNotLeaderNoApply, err)
		case errors.Is(err, raft.ErrLeadershipLost):
			err = &connLostError{err: err, tagged: true, leader: s.cfg.NodeID}
		}
		return fwdResponse{KV: kv, Index: idx}, err
	}
	resp, err := s.toLeader(ctx, req, local)
	for {
		var lost *connLostError
		if !errors.As(err, &lost) || !lost.tagged || lost.leader == "" {
			break
		}
		sresp, settled, serr := s.settle(ctx, tw, lost.leader, req, local)
		if !settled {
			break
		}
		resp, err = sresp, serr
	}
	// A forwarded write (also one the FSM refused, which still has an
	// index) returns once applied here too, so a read on this server that
	// follows it sees it (the Store contract).
	if resp.Index > 0 {
		if werr := s.waitApplied(ctx, resp.Index); werr != nil && err == nil {
			return raftstore.KeyValue{}, fmt.Errorf("%s: committed, but %w", what, werr)
		}
	}
	if err != nil {
		var re *remoteError
		if errors.As(err, &re) && (errors.Is(err, ErrNotLeader) || re.sentinel == nil) {
			return raftstore.KeyValue{}, fmt.Errorf("%s (forwarded to the leader): %w", what, err)
		}
		return raftstore.KeyValue{}, err
	}
	if resp.ValueOmitted {
		resp.KV.Value = op.Value
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

package raftkv

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"kedge.dev/kedge/raftstore"
)

// applyLocal proposes an encoded command on this server, which must lead,
// and waits for the FSM's answer. It returns the entry's raft index so a
// follower that forwarded it can wait until it applied it too.
func (s *Store) applyLocal(ctx context.Context, what string, data, tag []byte) (raftstore.KeyValue, uint64, error) {
	var timeout time.Duration // 0: wait for room in raft's queue as long as ctx allows
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return raftstore.KeyValue{}, 0, fmt.Errorf("%s: %w", what, context.DeadlineExceeded)
		}
	}
	f := s.raft.ApplyLog(raft.Log{Data: data, Extensions: tag}, timeout)
	if err := waitFuture(ctx, f); err != nil {
		return raftstore.KeyValue{}, 0, fmt.Errorf("%s: %w", what, err)
	}
	resp, ok := f.Response().(*applyResponse)
	if !ok {
		return raftstore.KeyValue{}, 0, fmt.Errorf("%s: unexpected raft response %T", what, f.Response())
	}
	return resp.KV, f.Index(), resp.Err
}

// leaderReadIndex is the read index a leader hands out, as etcd's
// ReadIndex: once an entry of its term is committed (the barrier, so its
// commit index is current), it takes its commit index, then confirms with
// a quorum that it still leads. Every entry any server may have applied
// (and shown a reader) is at or below that index, so a read served once the
// local state reached it sees every write acknowledged before, and every
// value another read already returned. (The leader's own applied index is
// not enough: a follower may apply a committed entry before the leader's
// FSM does, and a read there would then be newer than one here.)
//
// The index returned is that of the last entry the FSM applies (a command
// or a configuration) at or below the commit index, because state.db's
// applied index does not move for raft's no-op and barrier entries.
//
// A leader that is the only voter of its configuration needs no quorum:
// raft's VerifyLeader answers at once then too, but only from its main
// loop, where a read would queue behind the log writes in progress (with
// concurrent writers, half an fsync per read on average). A leader that is
// the only server at all hands out its applied index: no other server can
// have applied (and shown) anything, and every write it acknowledged is
// applied here, so its reads need not wait for the FSM to catch up with
// entries committed a moment ago.
func (s *Store) leaderReadIndex(ctx context.Context) (uint64, error) {
	if s.raft.State() != raft.Leader {
		return 0, errNotLeaderNoApply
	}
	term := s.raft.CurrentTerm()
	if s.barrierTerm.Load() != term {
		if err := waitFuture(ctx, s.raft.Barrier(0)); err != nil {
			return 0, fmt.Errorf("read index: barrier: %w", err)
		}
		s.barrierTerm.Store(term)
	}
	soleVoter, alone := s.membership()
	if alone {
		applied, _ := s.db.AppliedIndex()
		return applied, nil
	}
	commit := s.raft.CommitIndex()
	if !soleVoter {
		if err := waitFuture(ctx, s.raft.VerifyLeader()); err != nil {
			return 0, fmt.Errorf("read index: %w", err)
		}
	}
	return s.lastAppliedEntryAtOrBelow(commit), nil
}

// lastAppliedEntryAtOrBelow returns the index of the last command or
// configuration entry at or below idx: the applied index state.db reaches
// once everything up to idx is applied. Only a few no-op and barrier
// entries (one or two per term) sit between commands. An entry no longer
// in the log is in the snapshot, which state.db holds whole.
func (s *Store) lastAppliedEntryAtOrBelow(idx uint64) uint64 {
	for i := idx; i > 0; i-- {
		var l raft.Log
		if err := s.logs.GetLog(i, &l); err != nil {
			return i
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return i
		}
	}
	return 0
}

// membership reads the latest raft configuration (the one raft's quorum
// checks use, committed or not): soleVoter when this server is its only
// voter (its quorum is itself, as in VerifyLeader's single-server path),
// alone when it is the only server at all (no nonvoter either).
func (s *Store) membership() (soleVoter, alone bool) {
	f := s.raft.GetConfiguration() // a copy kept for readers: no round trip
	if f.Error() != nil {
		return false, false
	}
	servers := f.Configuration().Servers
	voters, self := 0, false
	for _, srv := range servers {
		if srv.Suffrage == raft.Voter {
			voters++
			self = self || srv.ID == raft.ServerID(s.cfg.NodeID)
		}
	}
	soleVoter = voters == 1 && self
	return soleVoter, soleVoter && len(servers) == 1
}

// followerRead makes a read on this server linearizable: it asks the
// leader for a read index (or computes it when leading; a leader that
// loses its leadership meanwhile asks the next one) and waits until the
// local state has applied it.
func (s *Store) followerRead(ctx context.Context) error {
	resp, err := s.toLeader(ctx, fwdRequest{Kind: "readindex"}, func(ctx context.Context) (fwdResponse, error) {
		idx, err := s.leaderReadIndex(ctx)
		return fwdResponse{Index: idx}, err
	})
	if err != nil {
		return fmt.Errorf("linearizable read: %w", err)
	}
	return s.waitApplied(ctx, resp.Index)
}

// waitApplied waits until state.db has applied raft index idx.
func (s *Store) waitApplied(ctx context.Context, idx uint64) error {
	return s.waitFor(ctx, func() bool { a, _ := s.db.AppliedIndex(); return a >= idx },
		func() string { a, _ := s.db.AppliedIndex(); return fmt.Sprintf("applied index %d, want %d", a, idx) })
}

// waitFor waits until ok, re-checking each time the FSM changed the state
// (a follower is usually there already when it asks).
func (s *Store) waitFor(ctx context.Context, ok func() bool, state func() string) error {
	for {
		changed := s.fsm.progress.changed()
		if ok() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for local state (%s): %w", state(), ctx.Err())
		case <-s.closing:
			return raftstore.ErrClosed
		case <-changed:
		}
	}
}

// futureRevisionWait bounds how long a follower waits for a revision it
// has not applied yet (a client that read a newer revision elsewhere).
const futureRevisionWait = 5 * time.Second

// waitRevision waits (on a follower, for at most futureRevisionWait) until
// the local state reached rev; it returns at once on the leader, where a
// revision not yet applied does not exist.
func (s *Store) waitRevision(ctx context.Context, rev int64) {
	if rev <= s.db.Revision() || s.raft.State() == raft.Leader {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, futureRevisionWait)
	defer cancel()
	_ = s.waitFor(ctx, func() bool { return s.db.Revision() >= rev }, func() string { return "" })
}

// WaitReady waits until a leader is known and this server's state has
// caught up with it (a barrier on the leader, a read index on a follower),
// so its reads see every write made before. Open calls it, except on the
// first start of a server that is still to be joined (NeedsJoin).
func (s *Store) WaitReady(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		addr, _ := s.raft.LeaderWithID()
		if addr != "" {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for a raft leader (state %v): %w", s.raft.State(), ctx.Err())
		case <-t.C:
		}
	}
	if s.raft.State() == raft.Leader {
		term := s.raft.CurrentTerm()
		if err := waitFuture(ctx, s.raft.Barrier(0)); err == nil {
			s.barrierTerm.Store(term)
			return nil
		}
	}
	if err := s.followerRead(ctx); err != nil {
		return fmt.Errorf("catch up with the leader: %w", err)
	}
	return nil
}

// NeedsJoin is true when this server started without any raft state and
// with JoinExisting: it serves nothing until a member adds it (Join on any
// server of the cluster) and WaitReady returns.
func (s *Store) NeedsJoin() bool { return s.needsJoin }

// leadership is the current leadership of this server as leader-only work
// sees it: leader is true only after a barrier of the term was applied.
// changed is closed and replaced at every change.
type leadership struct {
	mu      sync.Mutex
	leader  bool
	changed chan struct{}
}

func (l *leadership) set(v bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.leader == v {
		return
	}
	l.leader = v
	close(l.changed)
	l.changed = make(chan struct{})
}

// Leadership reports whether this server leads with its log applied, and
// a channel closed at the next change. Leader-only work starts when leader
// is true and stops when changed closes and Leadership says false (STYLE
// #14).
func (s *Store) Leadership() (leader bool, changed <-chan struct{}) {
	s.lead.mu.Lock()
	defer s.lead.mu.Unlock()
	return s.lead.leader, s.lead.changed
}

// runLeadership follows raft's leader channel (this goroutine is its only
// reader) and publishes leadership after a barrier of the new term.
func (s *Store) runLeadership(ctx context.Context) {
	for {
		var isLeader bool
		select {
		case <-ctx.Done():
			s.lead.set(false)
			return
		case isLeader = <-s.raft.LeaderCh():
		}
		if !isLeader {
			s.lead.set(false)
			continue
		}
		term := s.raft.CurrentTerm()
		err := waitFuture(ctx, s.raft.Barrier(0))
		if err != nil {
			s.log.Warn("barrier after gaining leadership failed", "err", err)
			continue // a loss of leadership follows on LeaderCh
		}
		s.barrierTerm.Store(term)
		if s.raft.State() == raft.Leader {
			s.log.Info("leading the cluster", "term", term)
			s.lead.set(true)
		}
	}
}

package raftkv

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Settling a forwarded write whose answer was lost.
//
// A follower forwards a write to the leader and waits for the answer. When
// the connection breaks after the request went out (typically: the leader
// was killed), the write may or may not be committed, and answering the
// client with an error leaves it with an unknown outcome. etcd members do
// better: they wait for their own proposal in the apply stream. kedge does
// the same with request tags:
//
//   - the follower tags each write it forwards (tagMagic, its session, a
//     sequence number) and registers a waiter under the tag before sending;
//   - the leader puts the tag in the raft entry's Extensions, which raft
//     replicates and sqlitelog stores with the entry (every kedge version
//     has), and says so in its answers (fwdResponse.Tagged);
//   - every server's FSM hands the result of an entry carrying one of its
//     own tags to the waiter.
//
// After a lost answer on a connection whose leader tags, the follower waits
// for a read index from a leader other than the one it sent to and applies
// up to it. A different leader that confirmed its leadership has a later
// term and has committed an entry of that term; an entry of the old term
// that is not in the log up to there can never be committed (Raft's log
// matching). So if the tagged entry was not applied by then, it never will
// be, and the write is sent again; if it was, the waiter has its result.
// A snapshot installed meanwhile may have skipped the entry: then, and when
// the same leader stays, the outcome stays unknown and the error stands.

// tagMagic starts every request tag: byte 1 is the tag format version.
const tagMagic = "kt\x01"

// tagLen is the length of a version-1 tag: magic, session, sequence.
const tagLen = len(tagMagic) + 8 + 8

// sameLeaderGrace is how long a follower whose connection to a leader broke
// waits for its write to show up in the apply stream while that leader
// stays: committed writes show up within a few heartbeats.
const sameLeaderGrace = 2 * time.Second

// tagWaiters are the forwarded writes of this server still waiting for an
// outcome, by sequence number. The session tells this process's tags from
// those of other servers and of earlier runs.
type tagWaiters struct {
	session [8]byte
	seq     atomic.Uint64

	mu sync.Mutex
	m  map[uint64]*tagWaiter
}

// tagWaiter receives the result of one tagged write once applied here.
type tagWaiter struct {
	tag  []byte
	seq  uint64
	done chan struct{} // closed when res and index are set
	res  applyResponse
	// index is the raft index the write was applied at.
	index uint64
	// restores is the FSM's restore count when the waiter was registered.
	restores uint64
}

func newTagWaiters() (*tagWaiters, error) {
	w := &tagWaiters{m: map[uint64]*tagWaiter{}}
	if _, err := rand.Read(w.session[:]); err != nil {
		return nil, fmt.Errorf("request tags: random session: %w", err)
	}
	return w, nil
}

// register returns a new tag and its waiter; forget must follow.
func (w *tagWaiters) register(restores uint64) *tagWaiter {
	seq := w.seq.Add(1)
	tag := make([]byte, 0, tagLen)
	tag = append(tag, tagMagic...)
	tag = append(tag, w.session[:]...)
	tag = binary.BigEndian.AppendUint64(tag, seq)
	tw := &tagWaiter{tag: tag, seq: seq, done: make(chan struct{}), restores: restores}
	w.mu.Lock()
	w.m[seq] = tw
	w.mu.Unlock()
	return tw
}

func (w *tagWaiters) forget(tw *tagWaiter) {
	w.mu.Lock()
	delete(w.m, tw.seq)
	w.mu.Unlock()
}

// deliver hands res to the waiter of ext, when ext is a tag of this
// session that is still waited for. The FSM calls it for every applied
// entry that carries extensions.
func (w *tagWaiters) deliver(ext []byte, index uint64, res *applyResponse) {
	if !validTag(ext) || string(ext[len(tagMagic):len(tagMagic)+8]) != string(w.session[:]) {
		return
	}
	seq := binary.BigEndian.Uint64(ext[len(tagMagic)+8:])
	w.mu.Lock()
	tw := w.m[seq]
	delete(w.m, seq)
	w.mu.Unlock()
	if tw == nil {
		return
	}
	tw.res, tw.index = *res, index
	close(tw.done)
}

// validTag reports whether b is a version-1 request tag. A leader puts
// nothing else in an entry's extensions.
func validTag(b []byte) bool {
	return len(b) == tagLen && string(b[:len(tagMagic)]) == tagMagic
}

// applied returns the waiter's outcome (ok) once the FSM delivered it; err
// is the write's own result.
func (tw *tagWaiter) applied() (resp fwdResponse, ok bool, err error) {
	select {
	case <-tw.done:
		return fwdResponse{KV: tw.res.KV, Index: tw.index}, true, tw.res.Err
	default:
		return fwdResponse{}, false, nil
	}
}

// connLostError is the error of a forwarded request whose connection ended
// after the request was sent: its answer is lost.
type connLostError struct {
	err error
	// tagged: the peer had answered with Tagged on this connection, so it
	// puts request tags in the entries it appends.
	tagged bool
	// leader is the ID of the server the request was sent to (set by
	// toLeader).
	leader string
}

func (e *connLostError) Error() string { return e.err.Error() }
func (e *connLostError) Unwrap() error { return e.err }

// settle decides the outcome of the tagged write req whose answer from
// leader lost was lost (see the comment at the top of this file). It
// returns the write's result, or the result of sending it again once it
// surely was not committed; settled is false when the outcome stays
// unknown, and the caller keeps its error; err is the write's own result.
func (s *Store) settle(ctx context.Context, tw *tagWaiter, lost string, req fwdRequest, local func(context.Context) (fwdResponse, error)) (resp fwdResponse, settled bool, err error) {
	s.log.Info("answer of a forwarded write lost; settling it through the apply stream", "leader", lost)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, leaderWait)
		defer cancel()
	}
	graceEnd := time.Now().Add(sameLeaderGrace)
	for {
		if resp, ok, err := tw.applied(); ok {
			return resp, true, err
		}
		idx, leader, rerr := s.readIndexAnyLeader(ctx)
		if rerr == nil && leader != "" && leader != lost {
			if werr := s.waitApplied(ctx, idx); werr != nil {
				return fwdResponse{}, false, nil
			}
			if resp, ok, err := tw.applied(); ok {
				return resp, true, err
			}
			if r := s.fsm.restores.Load(); r != tw.restores || r%2 == 1 {
				return fwdResponse{}, false, nil // a snapshot may hold it
			}
			s.log.Info("forwarded write was not committed; sending it again", "leader", leader)
			resp, err = s.toLeader(ctx, req, local)
			return resp, true, err
		}
		if rerr == nil && leader == lost && time.Now().After(graceEnd) {
			return fwdResponse{}, false, nil
		}
		select {
		case <-ctx.Done():
			return fwdResponse{}, false, nil
		case <-s.closing:
			return fwdResponse{}, false, nil
		case <-tw.done:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// readIndexAnyLeader returns a read index and the ID of the leader that
// gave it: this server's own when it leads. The ID is empty when the
// leader runs a version that does not say it.
func (s *Store) readIndexAnyLeader(ctx context.Context) (uint64, string, error) {
	if s.raft.State() == raft.Leader {
		idx, err := s.leaderReadIndex(ctx)
		return idx, s.cfg.NodeID, err
	}
	addr, _ := s.raft.LeaderWithID()
	if addr == "" {
		return 0, "", errNoLeader
	}
	resp, err := s.call(ctx, string(addr), fwdRequest{Kind: "readindex"})
	if err == nil {
		err = decodeErr(resp.Code, resp.Msg)
	}
	if err != nil {
		return 0, "", err
	}
	return resp.Index, resp.Leader, nil
}

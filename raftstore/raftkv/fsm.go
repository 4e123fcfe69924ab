package raftkv

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"kedge.dev/kedge/raftstore"
	"kedge.dev/kedge/raftstore/statedb"
)

// applyResponse is what the FSM returns for one raft entry; raft hands it to
// the ApplyFuture of the server that proposed the entry.
type applyResponse struct {
	KV  raftstore.KeyValue
	Err error
}

// fsm applies committed raft entries to state.db. raft calls ApplyBatch,
// Apply, Snapshot and Restore from its single FSM goroutine; Persist of a
// snapshot runs concurrently with later applies.
type fsm struct {
	db     *statedb.DB
	bc     *broadcaster
	log    *slog.Logger
	tmpDir string
	// progress is advanced after every change of state.db.
	progress *progress
	// compacted is poked (without blocking) after a compaction was applied,
	// so local maintenance can give the space back soon.
	compacted chan struct{}
	// tags receives the results of this server's tagged writes (nil: no
	// one waits, as in an offline reset).
	tags *tagWaiters
	// restores counts starts and ends of snapshot restores (odd while one
	// runs): a write applied by one has no result for its waiter.
	restores atomic.Uint64
}

var _ raft.BatchingFSM = (*fsm)(nil)

func newFSM(db *statedb.DB, bc *broadcaster, log *slog.Logger, tmpDir string, tags *tagWaiters) *fsm {
	return &fsm{db: db, bc: bc, log: log, tmpDir: tmpDir, compacted: make(chan struct{}, 1), progress: newProgress(), tags: tags}
}

// Apply applies one entry.
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies entries in one state.db transaction, then publishes
// the resulting events to live watchers. A storage failure panics: raft has
// already committed the entries, and skipping one would make this server's
// state diverge from the others; after a restart the FSM resumes from the
// last index it committed (as etcd does on a backend failure).
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	entries := make([]statedb.Entry, len(logs))
	decodeErrs := make([]error, len(logs))
	for i, l := range logs {
		entries[i] = statedb.Entry{Index: l.Index, Term: l.Term}
		if l.Type != raft.LogCommand {
			continue
		}
		op, err := decodeOp(l.Data)
		if err != nil {
			decodeErrs[i] = fmt.Errorf("raft entry %d: %w", l.Index, err)
			f.log.Error("refusing raft entry", "index", l.Index, "err", err)
			continue
		}
		if op == nil {
			f.log.Warn("ignoring unknown ignorable raft command", "index", l.Index, "type", l.Data[0])
		}
		entries[i].Op = op
	}
	results, events, err := f.db.Apply(context.Background(), entries)
	if err != nil {
		panic(fmt.Sprintf("raftstore: cannot apply committed raft entries %d-%d: %v",
			logs[0].Index, logs[len(logs)-1].Index, err))
	}
	f.progress.advance()
	f.bc.publish(events)
	resp := make([]any, len(logs))
	for i, r := range results {
		if decodeErrs[i] != nil {
			r.Err = decodeErrs[i]
		}
		if entries[i].Op != nil && entries[i].Op.Kind == statedb.OpCompact && r.Err == nil {
			select {
			case f.compacted <- struct{}{}:
			default:
			}
		}
		ar := &applyResponse{KV: r.KV, Err: r.Err}
		if f.tags != nil && len(logs[i].Extensions) > 0 {
			f.tags.deliver(logs[i].Extensions, logs[i].Index, ar)
		}
		resp[i] = ar
	}
	return resp
}

// Snapshot returns at once; the copy is made in Persist (see
// statedb.DB.Backup for why a copy newer than raft's index is safe).
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{db: f.db, tmpDir: f.tmpDir}, nil
}

// Restore replaces the state with a snapshot and drops live watchers, whose
// feeds no longer continue what they replayed; they watch again.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.restores.Add(1)
	defer f.restores.Add(1)
	if err := f.db.Restore(context.Background(), rc); err != nil {
		return err
	}
	f.progress.advance()
	f.bc.reset()
	return nil
}

type fsmSnapshot struct {
	db     *statedb.DB
	tmpDir string
}

// Persist copies state.db into the sink.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.persist(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist state snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) persist(w io.Writer) error {
	dir, err := os.MkdirTemp(s.tmpDir, "snapshot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "state.db")
	if err := s.db.Backup(context.Background(), path); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("copy %s: %w", path, err)
	}
	return nil
}

// Release has nothing to free: Persist cleans up after itself.
func (s *fsmSnapshot) Release() {}

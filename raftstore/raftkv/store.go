package raftkv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"kedge.dev/kedge/raftstore"
	"kedge.dev/kedge/raftstore/sqlitelog"
	"kedge.dev/kedge/raftstore/statedb"
)

// logCacheSize is how many recent raft entries are kept in memory.
const logCacheSize = 1024

// ErrNotLeader is returned by writes on a server that is not the raft
// leader (and, until forwarding exists, by writes racing a leadership loss).
var ErrNotLeader = errors.New("not the raft leader")

// Store is a raft-replicated raftstore.Store. It is safe for concurrent use.
// Open starts its background goroutines (compactor, maintenance); Close
// stops them and releases every file and socket.
type Store struct {
	cfg   Config
	log   *slog.Logger
	raft  *raft.Raft
	trans *raft.NetworkTransport
	logs  *sqlitelog.Store
	db    *statedb.DB
	fsm   *fsm
	bc    *broadcaster

	gate gate
	// barrierTerm is the raft term in which a barrier was last applied
	// (see readBarrier).
	barrierTerm atomic.Uint64
	// closing is closed by Close: watchers blocked on a slow consumer and
	// background loops stop on it.
	closing   <-chan struct{}
	cancel    context.CancelFunc
	bg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var _ raftstore.Store = (*Store)(nil)

// Open opens (or creates and bootstraps) the store in cfg.DataDir and
// returns once this server is the leader and has applied its whole log, so
// reads see every write made before a restart.
func Open(ctx context.Context, cfg Config) (_ *Store, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	logger := cfg.Logger.With("component", "raftstore")
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("open raftstore: create data dir: %w", err)
	}
	bgCtx, cancel := context.WithCancel(context.Background())
	s := &Store{cfg: cfg, log: logger, bc: newBroadcaster(), closing: bgCtx.Done(), cancel: cancel}
	closers := []func() error{func() error { cancel(); return nil }}
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()

	s.logs, err = sqlitelog.Open(ctx, sqlitelog.Config{
		Path:              filepath.Join(cfg.DataDir, "raft.db"),
		Synchronous:       cfg.RaftDBSynchronous,
		SlowSyncThreshold: cfg.SlowSyncThreshold,
		CheckIntegrity:    cfg.CheckIntegrityOnOpen,
		Logger:            logger,
	})
	if err != nil {
		return nil, fmt.Errorf("open raftstore: %w", err)
	}
	closers = append(closers, s.logs.Close)
	s.db, err = statedb.Open(ctx, statedb.Config{
		Path:                filepath.Join(cfg.DataDir, "state.db"),
		Synchronous:         cfg.StateDBSynchronous,
		CheckIntegrity:      cfg.CheckIntegrityOnOpen,
		SlowCommitThreshold: cfg.SlowSyncThreshold,
		Logger:              logger,
	})
	if err != nil {
		return nil, fmt.Errorf("open raftstore: %w", err)
	}
	closers = append(closers, s.db.Close)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, newHCLog(logger, "raft-snapshots"))
	if err != nil {
		return nil, fmt.Errorf("open raftstore: snapshot store in %s: %w", cfg.DataDir, err)
	}

	var advertise net.Addr
	if cfg.AdvertiseAddr != "" {
		if advertise, err = net.ResolveTCPAddr("tcp", cfg.AdvertiseAddr); err != nil {
			return nil, fmt.Errorf("open raftstore: advertise address: %w", err)
		}
	}
	s.trans, err = raft.NewTCPTransportWithLogger(cfg.BindAddr, advertise, cfg.TransportMaxPool,
		cfg.TransportTimeout, newHCLog(logger, "raft-transport"))
	if err != nil {
		return nil, fmt.Errorf("open raftstore: raft transport on %s: %w", cfg.BindAddr, err)
	}
	closers = append(closers, s.trans.Close)

	s.fsm = &fsm{db: s.db, bc: s.bc, log: logger, tmpDir: cfg.DataDir, compacted: make(chan struct{}, 1)}

	rc, err := s.raftConfig(snaps)
	if err != nil {
		return nil, fmt.Errorf("open raftstore: %w", err)
	}
	if err := s.checkStateNotAhead(snaps); err != nil {
		return nil, fmt.Errorf("open raftstore: %w", err)
	}
	has, err := raft.HasExistingState(s.logs, s.logs, snaps)
	if err != nil {
		return nil, fmt.Errorf("open raftstore: read raft state: %w", err)
	}
	if !has {
		// First start of this server: form a cluster of one. Joining an
		// existing cluster instead is the later multi-server path.
		boot := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: rc.LocalID, Address: s.trans.LocalAddr()}}}
		if err := raft.BootstrapCluster(rc, s.logs, s.logs, snaps, s.trans, boot); err != nil {
			return nil, fmt.Errorf("open raftstore: bootstrap cluster: %w", err)
		}
		logger.Info("bootstrapped single-server raft cluster", "id", cfg.NodeID, "addr", s.trans.LocalAddr())
	}
	// Recent entries stay in memory: followers are sent what was just
	// appended without a read of raft.db.
	cached, err := raft.NewLogCache(logCacheSize, s.logs)
	if err != nil {
		return nil, fmt.Errorf("open raftstore: log cache: %w", err)
	}
	s.raft, err = raft.NewRaft(rc, s.fsm, cached, s.logs, snaps, s.trans)
	if err != nil {
		return nil, fmt.Errorf("open raftstore: start raft: %w", err)
	}
	closers = append(closers, func() error { return s.raft.Shutdown().Error() })

	if err := s.waitReady(ctx); err != nil {
		return nil, fmt.Errorf("open raftstore: %w", err)
	}
	s.startBackground(bgCtx)
	logger.Info("raftstore ready", "revision", s.db.Revision(), "compacted", s.db.CompactRevision())
	return s, nil
}

// raftConfig derives raft's configuration. NoSnapshotRestoreOnStart is set
// because state.db persists by itself; raft restores the newest snapshot at
// start only when state.db is behind it (e.g. the file was lost).
func (s *Store) raftConfig(snaps raft.SnapshotStore) (*raft.Config, error) {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(s.cfg.NodeID)
	rc.HeartbeatTimeout = s.cfg.HeartbeatTimeout
	rc.ElectionTimeout = s.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = s.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = s.cfg.CommitTimeout
	rc.MaxAppendEntries = s.cfg.MaxAppendEntries
	rc.BatchApplyCh = true
	rc.SnapshotInterval = s.cfg.SnapshotInterval
	rc.SnapshotThreshold = s.cfg.SnapshotThreshold
	rc.TrailingLogs = s.cfg.TrailingLogs
	rc.Logger = newHCLog(s.log, "raft")
	rc.NoSnapshotRestoreOnStart = true
	list, err := snaps.List()
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	applied, _ := s.db.AppliedIndex()
	if len(list) > 0 && list[0].Index > applied {
		s.log.Warn("state.db is behind the newest raft snapshot; restoring it from the snapshot",
			"applied", applied, "snapshot", list[0].Index)
		rc.NoSnapshotRestoreOnStart = false
	}
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("raft config: %w", err)
	}
	return rc, nil
}

// checkStateNotAhead refuses a state.db that applied raft entries raft.db
// and the snapshots no longer have (raft.db lost or replaced): raft would
// hand out those indexes again and the FSM would skip them as applied.
func (s *Store) checkStateNotAhead(snaps raft.SnapshotStore) error {
	applied, _ := s.db.AppliedIndex()
	last, err := s.logs.LastIndex()
	if err != nil {
		return fmt.Errorf("read last raft index: %w", err)
	}
	list, err := snaps.List()
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	if len(list) > 0 && list[0].Index > last {
		last = list[0].Index
	}
	if applied > last {
		return fmt.Errorf("%s applied raft entries up to index %d but raft.db and the snapshots end at %d; "+
			"Try: restore raft.db of this data directory, or move state.db away so it is rebuilt from raft",
			filepath.Join(s.cfg.DataDir, "state.db"), applied, last)
	}
	return nil
}

// waitReady waits until a leader is known and, when it is this server,
// until every entry of its log is applied (a barrier).
func (s *Store) waitReady(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for s.raft.State() != raft.Leader {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for raft leadership (state %v): %w", s.raft.State(), ctx.Err())
		case <-t.C:
		}
	}
	term := s.raft.CurrentTerm()
	if err := waitFuture(ctx, s.raft.Barrier(0)); err != nil {
		return fmt.Errorf("wait for raft log to be applied: %w", err)
	}
	s.barrierTerm.Store(term)
	return nil
}

// Close stops the store: new calls fail with raftstore.ErrClosed, pending
// writes fail, watch channels close, then raft, the transport and both files
// are closed. It is idempotent and returns the first close's error.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.gate.close()
		s.cancel()
		var errs []error
		if err := s.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("shut down raft: %w", err))
		}
		s.bc.close()
		s.bg.Wait()
		s.gate.wait()
		if err := s.trans.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft transport: %w", err))
		}
		errs = append(errs, s.db.Close(), s.logs.Close())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("close raftstore: %w", err)
		}
	})
	return s.closeErr
}

// Addr returns the raft transport's address (useful with port 0).
func (s *Store) Addr() string { return string(s.trans.LocalAddr()) }

// gate refuses new calls once closed and lets Close wait for calls in flight.
type gate struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (g *gate) enter() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return raftstore.ErrClosed
	}
	g.wg.Add(1)
	return nil
}

func (g *gate) exit() { g.wg.Done() }

func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

func (g *gate) wait() { g.wg.Wait() }

// waitFuture waits for a raft future or ctx. raft futures cannot be
// cancelled: an abandoned write may still commit, as with etcd.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return mapRaftErr(err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func mapRaftErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", raftstore.ErrClosed, err)
	case errors.Is(err, raft.ErrNotLeader):
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: leadership lost before the write was known to commit; its outcome is unknown: %w", ErrNotLeader, err)
	}
	return err
}

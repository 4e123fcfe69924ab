package raftkv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"kedge.dev/kedge/raftstore"
	"kedge.dev/kedge/raftstore/sqlitelog"
	"kedge.dev/kedge/raftstore/statedb"
)

// logCacheSize is how many recent raft entries are kept in memory, for the
// leader to send to followers without reading raft.db. Followers lag by a
// batch or two; each entry holds an object (~1.5 KB for 1 KiB values), so
// 1024 kept ~1.6 MB live on every member, twice that in heap. 256 made
// each member's RSS ~2.3 MiB smaller in BenchmarkStoreCluster at 1 to 64
// clients with throughput unchanged (two runs, order swapped). A leader
// sends a batch of more than half of it (more than 128 writes at once)
// only after appending it itself, as upstream raft always does.
const logCacheSize = 256

// ErrNotLeader is returned by writes on a server that is not the raft
// leader (and, until forwarding exists, by writes racing a leadership loss).
var ErrNotLeader = errors.New("not the raft leader")

// Store is a raft-replicated raftstore.Store. It is safe for concurrent use.
// Open starts its background goroutines (compactor, maintenance); Close
// stops them and releases every file and socket.
type Store struct {
	cfg    Config
	log    *slog.Logger
	raft   *raft.Raft
	trans  *raft.NetworkTransport
	mux    *muxLayer
	fwd    fwdPool
	fwdMux muxPeers
	lead   leadership
	// needsJoin: first start with JoinExisting (see NeedsJoin).
	needsJoin bool
	logs      *sqlitelog.Store
	db        *statedb.DB
	fsm       *fsm
	bc        *broadcaster
	// tags are this server's writes waiting for their outcome (settle.go).
	tags *tagWaiters
	// testMuxFault, set by tests only, makes forwarding fail on purpose.
	testMuxFault atomic.Pointer[muxFault]

	gate gate
	// barrierTerm is the raft term in which a barrier was last applied
	// (see readBarrier).
	barrierTerm atomic.Uint64
	// closing is closed by Close: watchers blocked on a slow consumer and
	// background loops stop on it.
	closing   <-chan struct{}
	bgCtx     context.Context
	cancel    context.CancelFunc
	bg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	fwdDone   <-chan struct{}
	// raftReady is closed once raft is set: the forwarding listener
	// accepts peers' connections before NewRaft (it shares the raft port),
	// and a request served before then would use a nil raft.
	raftReady chan struct{}
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
	s := &Store{cfg: cfg, log: logger, bc: newBroadcaster(), closing: bgCtx.Done(), bgCtx: bgCtx, cancel: cancel, raftReady: make(chan struct{})}
	s.lead.changed = make(chan struct{})
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
		CommitInterval:      cfg.StateCommitInterval,
		ValueCacheBytes:     cfg.ValueCacheBytes,
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

	s.mux, err = newMuxLayer(cfg.BindAddr, cfg.AdvertiseAddr, cfg.PeerTLS)
	if err != nil {
		return nil, fmt.Errorf("open raftstore: raft transport: %w", err)
	}
	s.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: s.mux, MaxPool: cfg.TransportMaxPool, Timeout: cfg.TransportTimeout,
		Logger: newHCLog(logger, "raft-transport"),
	})
	closers = append(closers, s.trans.Close)
	fwdDone := make(chan struct{})
	go func() { defer close(fwdDone); s.serveForward() }()
	closers = append(closers, func() error { s.mux.Close(); <-fwdDone; s.fwd.closeAll(); s.fwdMux.closeAll(); return nil })
	s.fwdDone = fwdDone

	if s.tags, err = newTagWaiters(); err != nil {
		return nil, err
	}
	s.fsm = newFSM(s.db, s.bc, logger, cfg.DataDir, s.tags)

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
	if !has && cfg.JoinExisting {
		// First start of a server that joins: it waits, empty, until a
		// member adds it (Join); the leader then sends it a snapshot.
		s.needsJoin = true
		logger.Info("waiting to be joined to an existing cluster", "id", cfg.NodeID, "addr", s.trans.LocalAddr())
	} else if !has {
		// First start of this server: form a cluster of one; others join.
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
	close(s.raftReady)
	closers = append(closers, func() error { return s.raft.Shutdown().Error() })

	s.bg.Add(1)
	go func() { defer s.bg.Done(); s.runLeadership(bgCtx) }()
	if !s.needsJoin {
		if err := s.WaitReady(ctx); err != nil {
			return nil, fmt.Errorf("open raftstore: %w", err)
		}
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
		s.mux.Close()
		<-s.fwdDone
		s.fwd.closeAll()
		s.fwdMux.closeAll()
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

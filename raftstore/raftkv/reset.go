package raftkv

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"

	"kedge.dev/kedge/raftstore/sqlitelog"
	"kedge.dev/kedge/raftstore/statedb"
)

// ResetCluster turns the store in cfg.DataDir into a cluster of one voter,
// this server (cfg.NodeID at cfg.AdvertiseAddr, or BindAddr), keeping every
// key: the recovery when a quorum of servers is lost for good (k3s'
// --cluster-reset). It uses hashicorp/raft's RecoverCluster: the newest
// snapshot plus every entry in this server's log (including entries it had
// not yet seen committed) becomes the new state, and the membership is
// replaced. Run it on a stopped store; then Open as usual. Other servers of
// the old cluster must not be started again with their old data.
func ResetCluster(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	logger := cfg.Logger.With("component", "raftstore")
	for _, name := range []string{raftFile, stateFile} {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, name)); err != nil {
			return fmt.Errorf("reset cluster: %w: %w", ErrNoState, err)
		}
	}
	logs, err := sqlitelog.Open(ctx, sqlitelog.Config{
		Path: filepath.Join(cfg.DataDir, raftFile), Synchronous: cfg.RaftDBSynchronous,
		SlowSyncThreshold: cfg.SlowSyncThreshold, CheckIntegrity: cfg.CheckIntegrityOnOpen, Logger: logger,
	})
	if err != nil {
		return fmt.Errorf("reset cluster: %w", err)
	}
	defer logs.Close()
	db, err := statedb.Open(ctx, statedb.Config{
		Path: filepath.Join(cfg.DataDir, stateFile), Synchronous: cfg.StateDBSynchronous,
		CheckIntegrity: cfg.CheckIntegrityOnOpen, SlowCommitThreshold: cfg.SlowSyncThreshold, Logger: logger,
	})
	if err != nil {
		return fmt.Errorf("reset cluster: %w", err)
	}
	defer db.Close()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, newHCLog(logger, "raft-snapshots"))
	if err != nil {
		return fmt.Errorf("reset cluster: snapshot store: %w", err)
	}
	s := &Store{cfg: cfg, log: logger, logs: logs, db: db}
	if err := s.checkStateNotAhead(snaps); err != nil {
		return fmt.Errorf("reset cluster: %w", err)
	}
	rc, err := s.raftConfig(snaps)
	if err != nil {
		return fmt.Errorf("reset cluster: %w", err)
	}
	addr := raft.ServerAddress(cfg.AdvertiseAddr)
	if addr == "" {
		addr = raft.ServerAddress(cfg.BindAddr)
	}
	_, trans := raft.NewInmemTransport(addr)
	defer trans.Close()
	f := newFSM(db, newBroadcaster(), logger, cfg.DataDir, nil)
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: rc.LocalID, Address: addr}}}
	if err := raft.RecoverCluster(rc, f, logs, logs, snaps, trans, conf); err != nil {
		return fmt.Errorf("reset cluster in %s: %w", cfg.DataDir, err)
	}
	logger.Warn("raft cluster reset: this server is now the only voter", "id", cfg.NodeID, "addr", addr,
		"revision", db.Revision(), "applied", func() uint64 { i, _ := db.AppliedIndex(); return i }())
	return nil
}

package raftkv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"

	"kedge.dev/kedge/raftstore/sqlitelog"
	"kedge.dev/kedge/raftstore/statedb"
)

// ErrDataDirInUse: Restore was pointed at a data directory that already
// holds a store.
var ErrDataDirInUse = errors.New("data directory already holds a store")

// keyCurrentTerm is hashicorp/raft's stable-store key for the current term.
var keyCurrentTerm = []byte("CurrentTerm")

// Restore builds a new single-server raft cluster in cfg.DataDir from a
// backup made by Backup, like `etcdctl snapshot restore`: the state (keys,
// values, create/mod revisions, the revision counter and the compacted
// revision) is kept exactly, so resourceVersions clients hold stay
// meaningful; the raft membership is replaced by this server alone
// (cfg.NodeID at cfg.AdvertiseAddr, or BindAddr when that is empty).
//
// The backup becomes a raft snapshot at the raft index and term it had
// applied, and state.db, so Open starts without replaying anything. Restore
// refuses a data directory that already holds raft.db or state.db
// (ErrDataDirInUse): it never overwrites a store.
func Restore(ctx context.Context, cfg Config, backup string) (BackupInfo, error) {
	if err := cfg.Validate(); err != nil {
		return BackupInfo{}, err
	}
	info, err := statedb.ReadInfo(ctx, backup)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("restore from %s: %w", backup, err)
	}
	for _, name := range []string{stateFile, raftFile} {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, name)); err == nil {
			return BackupInfo{}, fmt.Errorf("restore into %s: %w (%s exists); Try: choose an empty --data-dir, or move the old one away first",
				cfg.DataDir, ErrDataDirInUse, name)
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return BackupInfo{}, fmt.Errorf("restore: create data dir: %w", err)
	}
	if err := restoreFiles(ctx, cfg, backup, info); err != nil {
		// Leave no half-restored store behind that Open would accept.
		for _, name := range []string{stateFile, raftFile} {
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(filepath.Join(cfg.DataDir, name+suffix))
			}
		}
		return BackupInfo{}, fmt.Errorf("restore from %s into %s: %w", backup, cfg.DataDir, err)
	}
	return info, nil
}

func restoreFiles(ctx context.Context, cfg Config, backup string, info BackupInfo) error {
	// A store that never applied a command has applied index 0; raft's
	// snapshots start at 1, and a state at 0 is merely "behind" the snapshot,
	// which Open restores from the same bytes.
	index, term := max(info.AppliedIndex, 1), max(info.AppliedTerm, 1)

	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, newHCLog(logger, "raft-snapshots"))
	if err != nil {
		return fmt.Errorf("snapshot store: %w", err)
	}
	addr := raft.ServerAddress(cfg.AdvertiseAddr)
	if addr == "" {
		addr = raft.ServerAddress(cfg.BindAddr)
	}
	_, trans := raft.NewInmemTransport(addr)
	defer trans.Close()
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(cfg.NodeID), Address: addr}}}
	sink, err := snaps.Create(raft.SnapshotVersionMax, index, term, conf, 1, trans)
	if err != nil {
		return fmt.Errorf("create raft snapshot: %w", err)
	}
	if err := copyFileTo(sink, backup); err != nil {
		sink.Cancel()
		return fmt.Errorf("write raft snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("write raft snapshot: %w", err)
	}

	tmp := filepath.Join(cfg.DataDir, stateFile+".restore")
	if err := copyFile(tmp, backup); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(cfg.DataDir, stateFile)); err != nil {
		return fmt.Errorf("place state.db: %w", err)
	}

	logs, err := sqlitelog.Open(ctx, sqlitelog.Config{
		Path: filepath.Join(cfg.DataDir, raftFile), Synchronous: cfg.RaftDBSynchronous,
		SlowSyncThreshold: cfg.SlowSyncThreshold, Logger: logger,
	})
	if err != nil {
		return err
	}
	// Terms never go back: the new leader's first term is after the
	// backup's.
	if err := logs.SetUint64(keyCurrentTerm, term); err != nil {
		logs.Close()
		return fmt.Errorf("set raft term: %w", err)
	}
	if err := logs.Close(); err != nil {
		return err
	}
	return syncDir(cfg.DataDir)
}

func copyFileTo(w io.Writer, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

func copyFile(dst, src string) error {
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	if err := copyFileTo(out, src); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("sync %s: %w", dst, err)
	}
	return out.Close()
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

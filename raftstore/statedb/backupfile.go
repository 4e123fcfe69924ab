package statedb

import (
	"context"
	"errors"
	"fmt"
	"os"

	"kedge.dev/kedge/raftstore/internal/sqlitefile"
)

// Info describes a state file: where its history stands and which raft
// entry it applied last.
type Info struct {
	// Revision is the revision of the last write in the file.
	Revision int64
	// CompactRevision is the revision history was compacted to.
	CompactRevision int64
	// AppliedIndex and AppliedTerm name the last raft entry applied.
	AppliedIndex, AppliedTerm uint64
	// Keys is the number of live keys.
	Keys int64
}

// ErrNoState marks a path where no state file exists.
var ErrNoState = errors.New("no state database")

// BackupFile copies the state file at src into dst (which must not exist)
// with VACUUM INTO, and returns what the copy holds. src may be in use by a
// running server in another process: SQLite's WAL gives this reader a
// consistent snapshot of the last commit, and the copy is compact and
// fsynced by SQLite. Nothing is written to src (beyond the shared-memory
// index every WAL reader touches).
func BackupFile(ctx context.Context, src, dst string) (Info, error) {
	if _, err := os.Stat(src); err != nil {
		return Info{}, fmt.Errorf("back up %s: %w: %w", src, ErrNoState, err)
	}
	if _, err := os.Stat(dst); err == nil {
		return Info{}, fmt.Errorf("back up to %s: file exists; Try: choose a new file name", dst)
	}
	f, err := sqlitefile.Open(ctx, sqlitefile.Options{Path: src, Synchronous: "NORMAL", ReadConns: 1})
	if err != nil {
		return Info{}, fmt.Errorf("back up %s: %w", src, err)
	}
	defer f.Close()
	if _, err := f.W.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		removeDB(dst)
		return Info{}, fmt.Errorf("back up %s: %w", src, sqlitefile.WrapErr(src, "vacuum into "+dst+" from", err))
	}
	info, err := ReadInfo(ctx, dst)
	if err != nil {
		removeDB(dst)
		return Info{}, fmt.Errorf("back up %s: check the copy: %w", src, err)
	}
	return info, nil
}

// ReadInfo opens the state file at path, checks its integrity and schema
// version, and reports what it holds. It fails with ErrNoState when path
// does not exist (it never creates a file).
func ReadInfo(ctx context.Context, path string) (Info, error) {
	if _, err := os.Stat(path); err != nil {
		return Info{}, fmt.Errorf("read %s: %w: %w", path, ErrNoState, err)
	}
	f, err := openFile(ctx, Config{Path: path, Synchronous: "NORMAL", CheckIntegrity: true, ReadConns: 1}, path)
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	m, err := readMeta(ctx, f.W)
	if err != nil {
		return Info{}, sqlitefile.WrapErr(path, "read meta of", err)
	}
	info := Info{Revision: m.rev, CompactRevision: m.compactRev, AppliedIndex: m.appliedIndex, AppliedTerm: m.appliedTerm}
	// The newest row of each key is live unless it is a tombstone.
	err = f.W.QueryRowContext(ctx, `SELECT COUNT(*) FROM kv_log k
		WHERE deleted = 0 AND revision = (SELECT MAX(revision) FROM kv_log WHERE key = k.key)`).Scan(&info.Keys)
	if err != nil {
		return Info{}, sqlitefile.WrapErr(path, "count keys of", err)
	}
	return info, nil
}

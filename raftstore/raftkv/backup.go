package raftkv

import (
	"context"
	"fmt"
	"path/filepath"

	"kedge.dev/kedge/raftstore/internal/sqlitefile"
	"kedge.dev/kedge/raftstore/statedb"
)

// ErrCorrupt marks a raft.db or state.db that is not a healthy SQLite
// database. Open fails with it (wrapped, naming the file) and never repairs
// or truncates the file: the operator restores a backup (Restore) or
// rebuilds the state from the other servers.
var ErrCorrupt = sqlitefile.ErrCorrupt

// ErrNoState marks a data directory without a state database.
var ErrNoState = statedb.ErrNoState

// BackupInfo describes a backup: where its history stands and which raft
// entry it applied last.
type BackupInfo = statedb.Info

// stateFile and raftFile are the names of the two databases in DataDir.
const (
	stateFile = "state.db"
	raftFile  = "raft.db"
)

// Backup writes a consistent copy of the state of the store in dataDir to
// dst, which must not exist. It reads state.db directly (SQLite's WAL lets
// another process read a consistent snapshot while the server writes), so it
// works whether or not a server runs on dataDir. The copy holds every
// committed write up to BackupInfo.Revision, with its revisions, and is what
// Restore takes.
func Backup(ctx context.Context, dataDir, dst string) (BackupInfo, error) {
	info, err := statedb.BackupFile(ctx, filepath.Join(dataDir, stateFile), dst)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("back up raftstore in %s: %w", dataDir, err)
	}
	return info, nil
}

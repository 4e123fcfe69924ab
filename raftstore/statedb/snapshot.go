package statedb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"kedge.dev/kedge/raftstore/internal/sqlitefile"
)

// Backup writes a consistent, compact copy of the state to path (which must
// not exist) with VACUUM INTO. It reads in one transaction, so it runs
// concurrently with Apply; the copy carries its own applied index, which may
// be newer than the raft index the caller asked the snapshot for. That is
// safe because Apply skips entries at or below the applied index.
func (d *DB) Backup(ctx context.Context, path string) error {
	d.fileMu.RLock()
	defer d.fileMu.RUnlock()
	if err := d.commitForRead(); err != nil {
		return fmt.Errorf("back up state to %s: %w", path, err)
	}
	// Readers are query_only; VACUUM INTO writes only the new file but
	// SQLite still refuses it there, so lift the flag on this one
	// connection for the copy.
	conn, err := d.db.R.Conn(ctx)
	if err != nil {
		return fmt.Errorf("back up state to %s: %w", path, sqlitefile.WrapErr(d.db.Path, "connect to", err))
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA query_only = OFF"); err != nil {
		return fmt.Errorf("back up state to %s: %w", path, sqlitefile.WrapErr(d.db.Path, "prepare copy of", err))
	}
	_, err = conn.ExecContext(ctx, "VACUUM INTO ?", path)
	if _, rerr := conn.ExecContext(context.Background(), "PRAGMA query_only = ON"); rerr != nil {
		conn.Raw(func(any) error { return driver.ErrBadConn }) // drop the connection rather than pool it writable
	}
	if err != nil {
		return fmt.Errorf("back up state to %s: %w", path, sqlitefile.WrapErr(d.db.Path, "vacuum into copy of", err))
	}
	return nil
}

// Restore replaces the whole state with the database read from r (a copy
// made by Backup). The copy is written beside state.db, fsynced and checked
// before it replaces the file, so a failed restore leaves the old state.
func (d *DB) Restore(ctx context.Context, r io.Reader) error {
	tmp := d.cfg.Path + ".restore"
	if err := removeDB(tmp); err != nil {
		return fmt.Errorf("restore state: %w", err)
	}
	if err := writeFile(tmp, r); err != nil {
		removeDB(tmp)
		return fmt.Errorf("restore state: %w", err)
	}
	check := d.cfg
	check.CheckIntegrity = true
	f, err := openFile(ctx, check, tmp)
	if err != nil {
		removeDB(tmp)
		return fmt.Errorf("restore state from snapshot: %w", err)
	}
	if err := f.Close(); err != nil {
		removeDB(tmp)
		return fmt.Errorf("restore state: %w", err)
	}

	d.fileMu.Lock()
	defer d.fileMu.Unlock()
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	// What was applied before the snapshot is committed first, so that
	// closing the file does not roll it back under a pending transaction.
	if err := d.commitLocked(); err != nil {
		return fmt.Errorf("restore state: %w", err)
	}
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("restore state: %w", err)
	}
	// Closing the last connection checkpoints and removes the WAL; remove
	// leftovers anyway so an old WAL can never be replayed onto the copy.
	if err := removeSidecars(d.cfg.Path); err != nil {
		return fmt.Errorf("restore state: %w", err)
	}
	if err := os.Rename(tmp, d.cfg.Path); err != nil {
		return fmt.Errorf("restore state: replace %s: %w", d.cfg.Path, err)
	}
	removeSidecars(tmp)
	if err := syncDir(filepath.Dir(d.cfg.Path)); err != nil {
		return fmt.Errorf("restore state: %w", err)
	}
	f, err = openFile(ctx, d.cfg, d.cfg.Path)
	if err != nil {
		return fmt.Errorf("restore state: reopen: %w", err)
	}
	d.db = f
	d.cache.reset()
	return d.loadMeta(ctx)
}

func writeFile(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

func removeSidecars(path string) error {
	for _, p := range []string{path + "-wal", path + "-shm", path + "-journal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return nil
}

func removeDB(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return removeSidecars(path)
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

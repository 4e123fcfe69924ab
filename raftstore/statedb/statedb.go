// Package statedb is raftstore's revisioned key-value state in one SQLite
// file (state.db), following etcd's model: a global revision bumped by every
// successful write, per-key create and mod revisions, and a history of past
// revisions kept until compaction.
//
// As in etcd, an empty store is at revision 1 and the first write gets
// revision 2, so revision 0 is free to mean "now" or "any" in the API.
//
// Every revision is one row of the kv_log table (a put, or a tombstone for a
// delete); the current value of a key is its newest row. The table also
// records the raft index last applied, in the same transaction as each
// change, so replaying raft entries after a restart is idempotent.
//
// The live rows of recently written or read keys are also kept in memory
// (cache.go), so Get and the conditional checks of Apply mostly skip SQLite;
// the cache changes no result.
//
// Applied entries may be committed later, together (Config.CommitInterval,
// commit.go), as etcd's backend commits its batch every 100 ms: the raft
// log already holds them durably, and a commit per raft batch rewrote the
// same pages (the log's last leaf, the index leaves of hot keys, the meta
// page) each time. Every read sees what was applied.
//
// Concurrency: Apply and Restore must be called by one goroutine at a time
// (raft's FSM goroutine); Maintain may run concurrently with them. Reads
// (Get, List, Events, Backup) are safe from any goroutine and see a
// consistent snapshot of applied state.
package statedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"kedge.dev/kedge/raftstore/internal/sqlitefile"
)

// schemaVersion is stored in meta; a file written by a newer kedge with an
// incompatible schema is refused instead of misread.
const schemaVersion = 1

const schema = `
CREATE TABLE IF NOT EXISTS kv_log (
	revision        INTEGER PRIMARY KEY,
	key             BLOB NOT NULL,
	create_revision INTEGER NOT NULL,
	prev_revision   INTEGER NOT NULL,
	deleted         INTEGER NOT NULL,
	value           BLOB
);
CREATE INDEX IF NOT EXISTS kv_log_key ON kv_log (key, revision);
CREATE TABLE IF NOT EXISTS meta (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES
	('schema_version', 1), ('revision', 1), ('compact_revision', 0),
	('applied_index', 0), ('applied_term', 0);
`

// Config configures a DB.
type Config struct {
	// Path of state.db.
	Path string
	// Synchronous is PRAGMA synchronous (default "NORMAL"). NORMAL is safe
	// here: a commit lost in a power cut is replayed from the raft log,
	// because the applied index is lost with it.
	Synchronous string
	// CheckIntegrity runs PRAGMA quick_check at open.
	CheckIntegrity bool
	// ReadConns is the reader pool size (default 4).
	ReadConns int
	// ValueCacheBytes bounds the cache of live rows that lets Get and
	// Apply skip SQLite for recently used keys (default 4 MiB; negative
	// disables).
	ValueCacheBytes int64
	// SlowCommitThreshold: apply commits slower than this are logged with
	// the measured latency (default 100ms; negative disables).
	SlowCommitThreshold time.Duration
	// CommitInterval is how long applied entries may wait for their
	// commit, so that the applies of that time share one (0: each Apply
	// commits). A read that goes to SQLite commits them first; a crash
	// loses them from state.db only, and raft replays them from its log
	// after the applied index the file kept.
	CommitInterval time.Duration
	// MaxPendingEntries commits at once when this many applied entries
	// wait (default 1000).
	MaxPendingEntries int
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// DB is the revisioned state. See the package doc for the concurrency
// contract.
type DB struct {
	cfg Config
	log *slog.Logger

	// fileMu guards db: readers hold it shared for one query or
	// transaction; Restore holds it exclusively while it swaps the file.
	fileMu sync.RWMutex
	db     *sqlitefile.DB

	// writeMu serializes writes on db.W (Apply, Restore, Maintain), so that
	// maintenance never interleaves with an apply transaction.
	writeMu sync.Mutex

	// cache holds the live rows of recently used keys (cache.go).
	cache *valueCache

	// The apply transaction not committed yet (commit.go), guarded by
	// writeMu; hasPending says whether there is one without taking it.
	pending    *sql.Tx
	pendingN   int // entries applied in it
	hasPending atomic.Bool
	commitTmr  *time.Timer
	// failed is the storage failure that lost applied entries; every
	// later Apply and read returns it (guarded by writeMu).
	failed    error
	hasFailed atomic.Bool
	closed    bool // guarded by writeMu

	// Mirrors of the meta table as applied, for callers that need no
	// consistency with a read transaction.
	rev          atomic.Int64
	compactRev   atomic.Int64
	appliedIndex atomic.Uint64
	appliedTerm  atomic.Uint64
}

// Open opens or creates state.db.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.Synchronous == "" {
		cfg.Synchronous = "NORMAL"
	}
	if cfg.SlowCommitThreshold == 0 {
		cfg.SlowCommitThreshold = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ValueCacheBytes == 0 {
		cfg.ValueCacheBytes = 4 << 20
	}
	if cfg.MaxPendingEntries <= 0 {
		cfg.MaxPendingEntries = 1000
	}
	d := &DB{cfg: cfg, log: cfg.Logger.With("file", cfg.Path), cache: newValueCache(cfg.ValueCacheBytes)}
	f, err := openFile(ctx, cfg, cfg.Path)
	if err != nil {
		return nil, err
	}
	d.db = f
	if err := d.loadMeta(ctx); err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

func openFile(ctx context.Context, cfg Config, path string) (*sqlitefile.DB, error) {
	f, err := sqlitefile.Open(ctx, sqlitefile.Options{
		Path:           path,
		Synchronous:    cfg.Synchronous,
		CheckIntegrity: cfg.CheckIntegrity,
		ReadConns:      cfg.ReadConns,
	})
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	if _, err := f.W.ExecContext(ctx, schema); err != nil {
		f.Close()
		return nil, fmt.Errorf("open state: %w", sqlitefile.WrapErr(path, "create schema in", err))
	}
	var v int64
	if err := f.W.QueryRowContext(ctx, "SELECT value FROM meta WHERE name = 'schema_version'").Scan(&v); err != nil {
		f.Close()
		return nil, fmt.Errorf("open state: %w", sqlitefile.WrapErr(path, "read schema version of", err))
	}
	if v != schemaVersion {
		f.Close()
		return nil, fmt.Errorf("open state: %s has schema version %d, this kedge knows %d; Try: run the kedge version that wrote it", path, v, schemaVersion)
	}
	return f, nil
}

// meta is the meta table's content.
type meta struct {
	rev, compactRev           int64
	appliedIndex, appliedTerm uint64
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func readMeta(ctx context.Context, q queryer) (meta, error) {
	rows, err := q.QueryContext(ctx, "SELECT name, value FROM meta")
	if err != nil {
		return meta{}, err
	}
	defer rows.Close()
	var m meta
	for rows.Next() {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			return meta{}, err
		}
		switch name {
		case "revision":
			m.rev = v
		case "compact_revision":
			m.compactRev = v
		case "applied_index":
			m.appliedIndex = uint64(v)
		case "applied_term":
			m.appliedTerm = uint64(v)
		}
	}
	return m, rows.Err()
}

func (d *DB) loadMeta(ctx context.Context) error {
	m, err := readMeta(ctx, d.db.W)
	if err != nil {
		return fmt.Errorf("open state: %w", sqlitefile.WrapErr(d.db.Path, "read meta of", err))
	}
	d.rev.Store(m.rev)
	d.compactRev.Store(m.compactRev)
	d.appliedIndex.Store(m.appliedIndex)
	d.appliedTerm.Store(m.appliedTerm)
	return nil
}

// Close commits what was applied and closes the file.
func (d *DB) Close() error {
	d.fileMu.Lock()
	defer d.fileMu.Unlock()
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.commitTmr != nil {
		d.commitTmr.Stop()
	}
	err := d.commitLocked()
	return errors.Join(err, d.db.Close())
}

// Revision returns the revision of the last applied write.
func (d *DB) Revision() int64 { return d.rev.Load() }

// CompactRevision returns the revision history was last compacted to.
func (d *DB) CompactRevision() int64 { return d.compactRev.Load() }

// AppliedIndex returns the raft index and term of the last applied entry.
func (d *DB) AppliedIndex() (index, term uint64) {
	return d.appliedIndex.Load(), d.appliedTerm.Load()
}

// Maintain gives free pages and the WAL back to the file system. Compaction
// deletes rows; without this the file would only grow.
func (d *DB) Maintain(ctx context.Context) error {
	d.fileMu.RLock()
	defer d.fileMu.RUnlock()
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	if err := d.commitLocked(); err != nil {
		return err
	}
	return d.db.Checkpoint(ctx)
}

// HistoryRows counts the rows kept in history (live keys plus retained past
// revisions); for tests and metrics.
func (d *DB) HistoryRows(ctx context.Context) (int64, error) {
	d.fileMu.RLock()
	defer d.fileMu.RUnlock()
	if err := d.commitForRead(); err != nil {
		return 0, err
	}
	var n int64
	if err := d.db.R.QueryRowContext(ctx, "SELECT COUNT(*) FROM kv_log").Scan(&n); err != nil {
		return 0, sqlitefile.WrapErr(d.db.Path, "count history of", err)
	}
	return n, nil
}

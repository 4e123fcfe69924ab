// Package sqlitefile opens the SQLite files of raftstore (raft.db and
// state.db) the same way: WAL journal, named pragmas instead of DSN strings,
// one writer connection and a pool of readers, and a clear error naming the
// file when it is not a healthy SQLite database.
//
// It never repairs, truncates or recreates a file that fails to open: an
// operator must decide what to do with a corrupt database.
package sqlitefile

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// ErrCorrupt marks a database file that is not SQLite or fails its integrity
// check. Callers check it with errors.Is; the message names the file.
var ErrCorrupt = errors.New("database file is corrupt")

// corruptHint ends every corruption error: the operator's way out. The file
// is never repaired or truncated here.
const corruptHint = "kedge never repairs it; Try: kedge store restore BACKUP.db --data-dir NEW-DIR " +
	"(a backup made with 'kedge store backup'), then start kedge server --data-dir NEW-DIR"

// Options names every SQLite knob the stores set. The zero value is not
// usable: fill Path and Synchronous at least.
type Options struct {
	// Path of the database file; created when missing.
	Path string
	// Synchronous is PRAGMA synchronous: "FULL", "NORMAL" or "EXTRA".
	Synchronous string
	// BusyTimeout is how long a connection waits for a lock (default 5s).
	BusyTimeout time.Duration
	// CacheSizeKiB is PRAGMA cache_size of the writer connection, in KiB
	// (default 1024), and ReadCacheSizeKiB that of each reader (default
	// 512). Each connection has its own cache, kept full once the file is
	// that large, and the kernel's page cache holds the file anyway: a
	// miss costs a read from memory, not from disk. 8 MiB each once made
	// the two files' ten connections hold up to 80 MiB; at 2 MiB each the
	// two writers alone held ~4 MiB of a store member's ~20 MiB of
	// anonymous memory in BenchmarkStoreCluster, and throughput was the
	// same with 1 MiB. At 512 KiB the state writer saved another ~0.6 MiB
	// but compare-and-swaps cost up to 17 % more CPU per write.
	CacheSizeKiB     int
	ReadCacheSizeKiB int
	// ReadConns is the size of the reader pool (default 4).
	ReadConns int
	// JournalSizeLimit caps the WAL file size kept after a checkpoint, in
	// bytes (default 64 MiB).
	JournalSizeLimit int64
	// AutoCheckpointPages is PRAGMA wal_autocheckpoint (default 1000 pages).
	AutoCheckpointPages int
	// CheckIntegrity runs PRAGMA quick_check at open (O(size of the file)).
	CheckIntegrity bool
	// StmtCacheSize is how many prepared statements each connection keeps
	// for reuse (default 32; negative disables). The stores run a few fixed
	// statements, and preparing one costs about as much as running it.
	StmtCacheSize int
}

func (o *Options) setDefaults() {
	if o.BusyTimeout == 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.CacheSizeKiB == 0 {
		o.CacheSizeKiB = 1024
	}
	if o.ReadCacheSizeKiB == 0 {
		o.ReadCacheSizeKiB = 512
	}
	if o.ReadConns == 0 {
		o.ReadConns = 4
	}
	if o.JournalSizeLimit == 0 {
		o.JournalSizeLimit = 64 << 20
	}
	if o.AutoCheckpointPages == 0 {
		o.AutoCheckpointPages = 1000
	}
	if o.StmtCacheSize == 0 {
		o.StmtCacheSize = 32
	}
}

// ValidateSynchronous reports whether s is a synchronous level the stores
// accept.
func ValidateSynchronous(s string) error {
	switch strings.ToUpper(s) {
	case "FULL", "NORMAL", "EXTRA":
		return nil
	}
	return fmt.Errorf("synchronous %q: want FULL, NORMAL or EXTRA", s)
}

// DB is one SQLite file opened as a single writer plus a reader pool.
// W has exactly one connection, so statements on it are serialized; R may
// run concurrently with W thanks to WAL.
type DB struct {
	Path string
	W    *sql.DB
	R    *sql.DB
}

// connector opens connections through a private driver value, so no driver
// is registered globally and the pragmas come from Options.
type connector struct {
	dsn string
	drv *sqlite3.SQLiteDriver
}

func (c connector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c connector) Driver() driver.Driver                        { return c.drv }

func newDB(dsn string, pragmas []string) *sql.DB {
	drv := &sqlite3.SQLiteDriver{ConnectHook: func(conn *sqlite3.SQLiteConn) error {
		for _, p := range pragmas {
			if _, err := conn.Exec(p, nil); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		return nil
	}}
	return sql.OpenDB(connector{dsn: dsn, drv: drv})
}

var sqliteHeader = []byte("SQLite format 3\x00")

// checkHeader fails for a non-empty file that does not start with the SQLite
// magic, before SQLite gets a chance to touch it.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	buf := make([]byte, len(sqliteHeader))
	n, err := io.ReadFull(f, buf)
	if n == 0 && (err == io.EOF || err == nil) {
		return nil // empty file: SQLite initialises it
	}
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("read header of %s: %w", path, err)
	}
	if !bytes.Equal(buf[:n], sqliteHeader) {
		return fmt.Errorf("%s is not an SQLite database (bad header): %w; %s", path, ErrCorrupt, corruptHint)
	}
	return nil
}

func isNew(path string) bool {
	fi, err := os.Stat(path)
	return err != nil || fi.Size() == 0
}

// Open opens (or creates) the database at opts.Path. It fails with an error
// wrapping ErrCorrupt and naming the file when the file is not a healthy
// SQLite database.
func Open(ctx context.Context, opts Options) (*DB, error) {
	opts.setDefaults()
	if err := ValidateSynchronous(opts.Synchronous); err != nil {
		return nil, err
	}
	if err := checkHeader(opts.Path); err != nil {
		return nil, err
	}
	common := []string{
		fmt.Sprintf("PRAGMA busy_timeout = %d", opts.BusyTimeout.Milliseconds()),
		"PRAGMA synchronous = " + strings.ToUpper(opts.Synchronous),
		"PRAGMA temp_store = MEMORY",
		"PRAGMA foreign_keys = OFF",
	}
	writer := append([]string{fmt.Sprintf("PRAGMA cache_size = -%d", opts.CacheSizeKiB)}, common...)
	if isNew(opts.Path) {
		// auto_vacuum only takes effect before the first table is
		// created. Setting it on an existing file would write to it, and
		// Open must not write before the integrity check.
		writer = append([]string{"PRAGMA auto_vacuum = INCREMENTAL"}, writer...)
	}
	writer = append(writer,
		fmt.Sprintf("PRAGMA journal_size_limit = %d", opts.JournalSizeLimit),
		fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", opts.AutoCheckpointPages),
	)
	// _txlock=immediate makes BEGIN take the write lock at once, so a write
	// transaction never fails half-way with SQLITE_BUSY on lock upgrade.
	cache := fmt.Sprintf("_stmt_cache_size=%d", max(opts.StmtCacheSize, 0))
	w := newDB("file:"+opts.Path+"?_txlock=immediate&"+cache, writer)
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	fail := func(what string, err error) (*DB, error) {
		w.Close()
		return nil, wrapErr(opts.Path, what, err)
	}
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return fail("set journal_mode", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fail("set journal_mode", fmt.Errorf("journal mode is %q, want wal", mode))
	}
	if opts.CheckIntegrity {
		var res string
		if err := w.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&res); err != nil {
			return fail("integrity check", err)
		}
		if res != "ok" {
			return fail("integrity check", fmt.Errorf("%s: %w", res, ErrCorrupt))
		}
	}
	reader := append([]string{fmt.Sprintf("PRAGMA cache_size = -%d", opts.ReadCacheSizeKiB)}, common...)
	reader = append(reader, "PRAGMA query_only = ON")
	r := newDB("file:"+opts.Path+"?"+cache, reader)
	r.SetMaxOpenConns(opts.ReadConns)
	r.SetMaxIdleConns(opts.ReadConns)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		return fail("open reader", err)
	}
	return &DB{Path: opts.Path, W: w, R: r}, nil
}

// Close closes both pools. The last connection to close checkpoints the WAL.
func (db *DB) Close() error {
	errR := db.R.Close()
	errW := db.W.Close()
	if err := errors.Join(errR, errW); err != nil {
		return fmt.Errorf("close %s: %w", db.Path, err)
	}
	return nil
}

// Checkpoint runs PRAGMA wal_checkpoint(TRUNCATE) and PRAGMA
// incremental_vacuum on the writer so the WAL and the free pages of the file
// are given back to the file system.
func (db *DB) Checkpoint(ctx context.Context) error {
	// incremental_vacuum frees one page per step of the statement: read it
	// to the end, as Exec would stop after the first step.
	rows, err := db.W.QueryContext(ctx, "PRAGMA incremental_vacuum")
	if err != nil {
		return wrapErr(db.Path, "incremental vacuum", err)
	}
	for rows.Next() {
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return wrapErr(db.Path, "incremental vacuum", err)
	}
	// A checkpoint that cannot finish because a reader holds an old
	// snapshot reports busy in its result row, not as an error: retry later.
	var busy, logPages, ckptPages int
	if err := db.W.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &ckptPages); err != nil {
		return wrapErr(db.Path, "wal checkpoint", err)
	}
	return nil
}

// WrapErr wraps an error from the file at path with what was being done,
// adding ErrCorrupt and an operator hint when SQLite reports corruption.
func WrapErr(path, what string, err error) error { return wrapErr(path, what, err) }

func wrapErr(path, what string, err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) && (se.Code == sqlite3.ErrCorrupt || se.Code == sqlite3.ErrNotADB) {
		return fmt.Errorf("%s %s: %w: %w; %s", what, path, err, ErrCorrupt, corruptHint)
	}
	if errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("%s %s: %w; %s", what, path, err, corruptHint)
	}
	return fmt.Errorf("%s %s: %w", what, path, err)
}

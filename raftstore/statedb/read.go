package statedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"kedge.dev/kedge/raftstore"
	"kedge.dev/kedge/raftstore/internal/sqlitefile"
)

// prefixEnd returns the smallest key greater than every key with prefix,
// and false when there is none (empty prefix or all 0xff bytes).
func prefixEnd(prefix string) ([]byte, bool) {
	end := []byte(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1], true
		}
	}
	return nil, false
}

// keyRange builds the WHERE clause on column col for keys starting with
// prefix and greater than after (after "" means no lower bound beyond the
// prefix).
func keyRange(col, prefix, after string) (string, []any) {
	var where string
	var args []any
	if after >= prefix && after != "" {
		where, args = col+" > ?", []any{[]byte(after)}
	} else {
		where, args = col+" >= ?", []any{[]byte(prefix)}
	}
	if end, ok := prefixEnd(prefix); ok {
		where += " AND " + col + " < ?"
		args = append(args, end)
	}
	return where, args
}

// listQuery selects, for keys matching where, the newest row at or below
// a revision (the last argument), live keys only, in key order.
func listQuery(where string) string {
	return `SELECT key, MAX(revision * 2 + deleted) AS rd, create_revision, value
		FROM kv_log WHERE ` + where + ` AND revision <= ? GROUP BY key HAVING rd % 2 = 0 ORDER BY key`
}

// readTx runs fn in a read transaction so every query in it sees one
// snapshot of the file.
func (d *DB) readTx(ctx context.Context, what string, fn func(tx *sql.Tx, m meta) error) error {
	d.fileMu.RLock()
	defer d.fileMu.RUnlock()
	if err := d.commitForRead(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	tx, err := d.db.R.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("%s: %w", what, sqlitefile.WrapErr(d.db.Path, "begin read in", err))
	}
	defer tx.Rollback()
	m, err := readMeta(ctx, tx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, sqlitefile.WrapErr(d.db.Path, "read meta of", err))
	}
	return fn(tx, m)
}

// Get returns the current value of key or raftstore.ErrNotFound.
// The value is the caller's to keep and modify.
func (d *DB) Get(ctx context.Context, key string) (raftstore.KeyValue, error) {
	d.fileMu.RLock()
	defer d.fileMu.RUnlock()
	r, ok, epoch := d.cache.lookup(key)
	if ok {
		return raftstore.KeyValue{Key: key, Value: append([]byte{}, r.value...), ModRevision: r.rev, CreateRevision: r.createRev}, nil
	}
	if err := d.commitForRead(); err != nil {
		return raftstore.KeyValue{}, fmt.Errorf("get %q: %w", key, err)
	}
	err := d.db.R.QueryRowContext(ctx,
		"SELECT revision, create_revision, deleted, value FROM kv_log WHERE key = ? ORDER BY revision DESC LIMIT 1",
		[]byte(key)).Scan(&r.rev, &r.createRev, &r.deleted, &r.value)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && r.deleted) {
		return raftstore.KeyValue{}, fmt.Errorf("get %q: %w", key, raftstore.ErrNotFound)
	}
	if err != nil {
		return raftstore.KeyValue{}, fmt.Errorf("get %q: %w", key, sqlitefile.WrapErr(d.db.Path, "read", err))
	}
	if d.cache.enabled() {
		// The cache keeps its own copy: the caller may modify the value.
		cached := r
		cached.value = append([]byte(nil), r.value...)
		d.cache.fill(key, cached, epoch)
	}
	return raftstore.KeyValue{Key: key, Value: r.value, ModRevision: r.rev, CreateRevision: r.createRev}, nil
}

// List returns the keys under prefix at opts.Revision (0: current), in key
// order, one page at a time.
func (d *DB) List(ctx context.Context, prefix string, opts raftstore.ListOptions) (raftstore.ListResult, error) {
	var res raftstore.ListResult
	what := fmt.Sprintf("list %q", prefix)
	err := d.readTx(ctx, what, func(tx *sql.Tx, m meta) error {
		rev := opts.Revision
		switch {
		case rev == 0:
			rev = m.rev
		case rev > m.rev:
			return fmt.Errorf("%s at revision %d, current revision %d: %w", what, rev, m.rev, raftstore.ErrFutureRevision)
		case rev < m.compactRev:
			return fmt.Errorf("%s at revision %d, compacted revision %d: %w", what, rev, m.compactRev, raftstore.ErrCompacted)
		}
		res.Revision = rev
		where, args := keyRange("key", prefix, opts.StartAfter)
		// For each key the newest row at or below rev, keeping live ones.
		// revision*2+deleted carries the tombstone flag of the newest row
		// into the aggregate, so HAVING can filter on it and the query
		// stays a walk of the (key, revision) index that LIMIT can stop;
		// SQLite fills the bare columns from the row holding the MAX.
		q := listQuery(where)
		qargs := append(append([]any{}, args...), rev)
		if opts.Limit > 0 {
			q += " LIMIT ?"
			qargs = append(qargs, opts.Limit+1)
		}
		rows, err := tx.QueryContext(ctx, q, qargs...)
		if err != nil {
			return fmt.Errorf("%s: %w", what, sqlitefile.WrapErr(d.db.Path, "query", err))
		}
		defer rows.Close()
		for rows.Next() {
			var kv raftstore.KeyValue
			var key []byte
			var rd int64
			if err := rows.Scan(&key, &rd, &kv.CreateRevision, &kv.Value); err != nil {
				return fmt.Errorf("%s: %w", what, sqlitefile.WrapErr(d.db.Path, "scan", err))
			}
			kv.Key, kv.ModRevision = string(key), rd/2
			res.KVs = append(res.KVs, kv)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%s: %w", what, sqlitefile.WrapErr(d.db.Path, "query", err))
		}
		if opts.Limit <= 0 || int64(len(res.KVs)) <= opts.Limit {
			return nil
		}
		res.KVs = res.KVs[:opts.Limit]
		res.More = true
		last := res.KVs[len(res.KVs)-1].Key
		where, args = keyRange("key", prefix, last)
		cq := "SELECT COUNT(*) FROM (SELECT MAX(revision * 2 + deleted) AS rd FROM kv_log WHERE " + where +
			" AND revision <= ? GROUP BY key HAVING rd % 2 = 0)"
		if err := tx.QueryRowContext(ctx, cq, append(args, rev)...).Scan(&res.Remaining); err != nil {
			return fmt.Errorf("%s: %w", what, sqlitefile.WrapErr(d.db.Path, "count", err))
		}
		return nil
	})
	if err != nil {
		return raftstore.ListResult{}, err
	}
	return res, nil
}

// Events returns up to limit events for keys under prefix with a revision
// greater than afterRev, in revision order, or raftstore.ErrCompacted when
// afterRev is below the compacted revision. Fewer than limit events means
// the history was exhausted when it was read.
func (d *DB) Events(ctx context.Context, prefix string, afterRev int64, limit int) ([]raftstore.Event, error) {
	var events []raftstore.Event
	what := fmt.Sprintf("read history of %q after revision %d", prefix, afterRev)
	err := d.readTx(ctx, what, func(tx *sql.Tx, m meta) error {
		if afterRev < m.compactRev {
			return fmt.Errorf("%s, compacted revision %d: %w", what, m.compactRev, raftstore.ErrCompacted)
		}
		where, args := keyRange("l.key", prefix, "")
		q := `SELECT l.revision, l.key, l.create_revision, l.deleted, l.value,
				p.revision, p.create_revision, p.value
			FROM kv_log l LEFT JOIN kv_log p ON p.revision = l.prev_revision
			WHERE l.revision > ? AND ` + where + ` ORDER BY l.revision LIMIT ?`
		rows, err := tx.QueryContext(ctx, q, append(append([]any{afterRev}, args...), limit)...)
		if err != nil {
			return fmt.Errorf("%s: %w", what, sqlitefile.WrapErr(d.db.Path, "query", err))
		}
		defer rows.Close()
		for rows.Next() {
			var (
				rev, createRev  int64
				key, value      []byte
				deleted         bool
				prevRev, prevCR sql.NullInt64
				prevValue       []byte
			)
			if err := rows.Scan(&rev, &key, &createRev, &deleted, &value, &prevRev, &prevCR, &prevValue); err != nil {
				return fmt.Errorf("%s: %w", what, sqlitefile.WrapErr(d.db.Path, "scan", err))
			}
			ev := raftstore.Event{Type: raftstore.EventPut, KV: raftstore.KeyValue{
				Key: string(key), Value: value, CreateRevision: createRev, ModRevision: rev}}
			// A create (the key's first row, or the first after a
			// tombstone) has no previous value.
			if createRev != rev && prevRev.Valid {
				ev.PrevKV = &raftstore.KeyValue{Key: string(key), Value: nonNil(prevValue),
					CreateRevision: prevCR.Int64, ModRevision: prevRev.Int64}
			}
			if deleted {
				ev.Type = raftstore.EventDelete
				if ev.PrevKV != nil {
					ev.KV.Value = ev.PrevKV.Value
				}
			}
			if ev.KV.Value == nil {
				ev.KV.Value = []byte{}
			}
			events = append(events, ev)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%s: %w", what, sqlitefile.WrapErr(d.db.Path, "query", err))
		}
		return nil
	})
	return events, err
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

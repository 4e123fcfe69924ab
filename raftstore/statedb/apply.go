package statedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"kedge.dev/kedge/raftstore"
	"kedge.dev/kedge/raftstore/internal/sqlitefile"
)

// OpKind says what an Op does.
type OpKind uint8

// Op kinds. Their numbers are not persisted; the raft command encoding has
// its own.
const (
	OpCreate OpKind = iota + 1
	OpUpdate
	OpDelete
	OpCompact
)

// Op is one state change, decided against the current state inside Apply.
type Op struct {
	Kind  OpKind
	Key   string
	Value []byte
	// ExpectModRev for Update/Delete: 0 means unconditional.
	ExpectModRev int64
	// Revision for Compact.
	Revision int64
}

// Entry is one raft log entry to apply. Op nil means an entry without state
// change (a configuration entry, an ignorable command): it only advances the
// applied index.
type Entry struct {
	Index, Term uint64
	Op          *Op
}

// Result is the outcome of one Entry. Err is a conditional-write failure
// (wrapping raftstore.ErrKeyExists, ErrNotFound, ErrConflict or
// ErrFutureRevision) that left the state unchanged; it is not a storage
// failure.
type Result struct {
	KV  raftstore.KeyValue
	Err error
	// Skipped is true when the entry had already been applied before (a
	// replay after restart); nobody waits for its result.
	Skipped bool
}

// row is one kv_log row as the write path needs it.
type row struct {
	rev, createRev int64
	deleted        bool
	value          []byte
}

// Apply applies entries in order and returns one Result per entry and the
// events of the successful writes, in revision order. The entries are
// written into the pending transaction, which commits now or within
// Config.CommitInterval; reads see them at once either way. Entries with an
// index at or below the applied index are skipped. A non-nil error is a
// storage failure: nothing of the batch was applied, nor what earlier
// batches applied since the last commit (AppliedIndex says where the state
// is), and the DB refuses every later Apply.
func (d *DB) Apply(ctx context.Context, entries []Entry) ([]Result, []raftstore.Event, error) {
	d.fileMu.RLock()
	defer d.fileMu.RUnlock()
	d.writeMu.Lock()
	defer d.writeMu.Unlock()

	results := make([]Result, len(entries))
	if len(entries) == 0 || entries[len(entries)-1].Index <= d.appliedIndex.Load() {
		for i := range results {
			results[i].Skipped = true // replays: nothing to write
		}
		return results, nil, nil
	}
	var events []raftstore.Event
	tx, err := d.applyTx()
	if err != nil {
		return nil, nil, err
	}
	a := applier{tx: tx, ctx: ctx, rev: d.rev.Load(), compactRev: d.compactRev.Load(), cache: d.cache, written: map[string]row{}}
	applied, appliedTerm := d.appliedIndex.Load(), d.appliedTerm.Load()
	n := 0
	for i, e := range entries {
		if e.Index <= applied {
			results[i].Skipped = true
			continue
		}
		applied, appliedTerm = e.Index, e.Term
		n++
		if e.Op == nil {
			continue
		}
		res, ev, err := a.apply(e.Op)
		if err != nil {
			return nil, nil, d.abort(sqlitefile.WrapErr(d.db.Path, fmt.Sprintf("apply raft entry %d to", e.Index), err))
		}
		results[i] = res
		if ev != nil {
			events = append(events, *ev)
		}
	}
	if err := a.setMeta(applied, appliedTerm); err != nil {
		return nil, nil, d.abort(sqlitefile.WrapErr(d.db.Path, "update meta in", err))
	}
	d.cache.applied(a.written)
	d.rev.Store(a.rev)
	d.compactRev.Store(a.compactRev)
	d.appliedTerm.Store(appliedTerm)
	d.appliedIndex.Store(applied)
	if err := d.applied(n); err != nil {
		return nil, nil, err
	}
	return results, events, nil
}

// abort rolls the pending transaction back after a failed write and fails
// the DB as a failed commit does. Callers hold writeMu.
func (d *DB) abort(err error) error {
	if rerr := d.pending.Rollback(); rerr != nil {
		d.log.Error("roll back a failed apply", "err", rerr)
	}
	return d.fail(err)
}

// applier applies ops within one transaction, tracking the revision.
type applier struct {
	ctx             context.Context
	tx              *sql.Tx
	rev, compactRev int64
	// cache holds applied live rows; written is the newest row of each
	// key this batch wrote (it wins over the cache).
	cache   *valueCache
	written map[string]row
}

func (a *applier) setMeta(applied, term uint64) error {
	_, err := a.tx.ExecContext(a.ctx, `UPDATE meta SET value = CASE name
		WHEN 'revision' THEN ?1 WHEN 'compact_revision' THEN ?2
		WHEN 'applied_index' THEN ?3 WHEN 'applied_term' THEN ?4 ELSE value END`,
		a.rev, a.compactRev, int64(applied), int64(term))
	return err
}

// latest returns the newest row of key: from this batch's writes or the
// cache when the key is live there, else from SQLite through the apply
// transaction, which sees what earlier batches wrote into it (SQLite alone
// decides about tombstones and what compaction removed).
func (a *applier) latest(key string) (row, bool, error) {
	if r, ok := a.written[key]; ok && !r.deleted {
		return r, true, nil
	} else if !ok {
		if r, ok := a.cache.current(key); ok {
			return r, true, nil
		}
	}
	var r row
	err := a.tx.QueryRowContext(a.ctx,
		"SELECT revision, create_revision, deleted, value FROM kv_log WHERE key = ? ORDER BY revision DESC LIMIT 1",
		[]byte(key)).Scan(&r.rev, &r.createRev, &r.deleted, &r.value)
	if errors.Is(err, sql.ErrNoRows) {
		return row{}, false, nil
	}
	return r, err == nil, err
}

func (a *applier) insert(key string, createRev, prevRev int64, deleted bool, value []byte) (int64, error) {
	rev := a.rev + 1
	if value == nil && !deleted {
		value = []byte{}
	}
	_, err := a.tx.ExecContext(a.ctx,
		"INSERT INTO kv_log (revision, key, create_revision, prev_revision, deleted, value) VALUES (?, ?, ?, ?, ?, ?)",
		rev, []byte(key), createRev, prevRev, deleted, value)
	if err != nil {
		return 0, err
	}
	a.rev = rev
	a.written[key] = row{rev: rev, createRev: createRev, deleted: deleted, value: value}
	return rev, nil
}

// apply returns a Result with Err set for a refused conditional write, and
// an error only for a storage failure.
func (a *applier) apply(op *Op) (Result, *raftstore.Event, error) {
	switch op.Kind {
	case OpCreate:
		return a.create(op)
	case OpUpdate:
		return a.update(op)
	case OpDelete:
		return a.delete(op)
	case OpCompact:
		return a.compact(op.Revision)
	}
	return Result{Err: fmt.Errorf("apply: unknown op kind %d", op.Kind)}, nil, nil
}

func (a *applier) create(op *Op) (Result, *raftstore.Event, error) {
	cur, ok, err := a.latest(op.Key)
	if err != nil {
		return Result{}, nil, err
	}
	if ok && !cur.deleted {
		return Result{Err: fmt.Errorf("create %q: %w", op.Key, raftstore.ErrKeyExists)}, nil, nil
	}
	rev, err := a.insert(op.Key, a.rev+1, cur.rev, false, op.Value)
	if err != nil {
		return Result{}, nil, err
	}
	kv := raftstore.KeyValue{Key: op.Key, Value: op.Value, CreateRevision: rev, ModRevision: rev}
	return Result{KV: kv}, &raftstore.Event{Type: raftstore.EventPut, KV: kv}, nil
}

// existing returns the live row of key or a Result refusing the write.
func (a *applier) existing(what string, op *Op) (row, *Result, error) {
	cur, ok, err := a.latest(op.Key)
	if err != nil {
		return row{}, nil, err
	}
	if !ok || cur.deleted {
		return row{}, &Result{Err: fmt.Errorf("%s %q: %w", what, op.Key, raftstore.ErrNotFound)}, nil
	}
	if op.ExpectModRev != 0 && op.ExpectModRev != cur.rev {
		return row{}, &Result{Err: fmt.Errorf("%s %q: expected mod revision %d, key is at %d: %w",
			what, op.Key, op.ExpectModRev, cur.rev, raftstore.ErrConflict)}, nil
	}
	return cur, nil, nil
}

func (a *applier) update(op *Op) (Result, *raftstore.Event, error) {
	cur, refused, err := a.existing("update", op)
	if err != nil || refused != nil {
		return deref(refused), nil, err
	}
	rev, err := a.insert(op.Key, cur.createRev, cur.rev, false, op.Value)
	if err != nil {
		return Result{}, nil, err
	}
	kv := raftstore.KeyValue{Key: op.Key, Value: op.Value, CreateRevision: cur.createRev, ModRevision: rev}
	prev := raftstore.KeyValue{Key: op.Key, Value: cur.value, CreateRevision: cur.createRev, ModRevision: cur.rev}
	return Result{KV: kv}, &raftstore.Event{Type: raftstore.EventPut, KV: kv, PrevKV: &prev}, nil
}

func (a *applier) delete(op *Op) (Result, *raftstore.Event, error) {
	cur, refused, err := a.existing("delete", op)
	if err != nil || refused != nil {
		return deref(refused), nil, err
	}
	rev, err := a.insert(op.Key, cur.createRev, cur.rev, true, nil)
	if err != nil {
		return Result{}, nil, err
	}
	kv := raftstore.KeyValue{Key: op.Key, Value: cur.value, CreateRevision: cur.createRev, ModRevision: rev}
	prev := raftstore.KeyValue{Key: op.Key, Value: cur.value, CreateRevision: cur.createRev, ModRevision: cur.rev}
	return Result{KV: kv}, &raftstore.Event{Type: raftstore.EventDelete, KV: kv, PrevKV: &prev}, nil
}

// compact discards history that no read at a revision >= rev and no watch
// from a revision >= rev can need: every row superseded by a newer row of
// the same key at or below rev, and every tombstone at or below rev. Rows at
// or below the previous compaction were already reduced to one live row per
// key, so only rows in (previous, rev] need looking at: each of them
// supersedes the row its prev_revision points to.
func (a *applier) compact(rev int64) (Result, *raftstore.Event, error) {
	if rev > a.rev {
		return Result{Err: fmt.Errorf("compact to %d, current revision %d: %w", rev, a.rev, raftstore.ErrFutureRevision)}, nil, nil
	}
	if rev <= a.compactRev {
		return Result{}, nil, nil
	}
	if _, err := a.tx.ExecContext(a.ctx, `DELETE FROM kv_log WHERE revision IN (
		SELECT prev_revision FROM kv_log WHERE revision > ?1 AND revision <= ?2 AND prev_revision > 0)`,
		a.compactRev, rev); err != nil {
		return Result{}, nil, err
	}
	if _, err := a.tx.ExecContext(a.ctx,
		"DELETE FROM kv_log WHERE revision > ? AND revision <= ? AND deleted = 1", a.compactRev, rev); err != nil {
		return Result{}, nil, err
	}
	a.compactRev = rev
	return Result{}, nil, nil
}

func deref(r *Result) Result {
	if r == nil {
		return Result{}
	}
	return *r
}

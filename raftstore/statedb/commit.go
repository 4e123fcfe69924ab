package statedb

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"kedge.dev/kedge/raftstore/internal/sqlitefile"
)

// applyTx returns the transaction Apply writes into: the pending one, or a
// new one. Callers hold writeMu. The transaction outlives the Apply that
// began it, so it is not bound to that call's context (database/sql rolls
// a transaction back when its context ends).
func (d *DB) applyTx() (*sql.Tx, error) {
	if d.failed != nil {
		return nil, d.failed
	}
	if d.pending != nil {
		return d.pending, nil
	}
	tx, err := d.db.W.BeginTx(context.Background(), nil)
	if err != nil {
		return nil, sqlitefile.WrapErr(d.db.Path, "begin apply in", err)
	}
	d.pending, d.pendingN = tx, 0
	d.hasPending.Store(true)
	return tx, nil
}

// applied is called by Apply after it wrote n entries into the pending
// transaction: it commits now when no interval is set or enough entries
// wait, else makes sure the timer will. Callers hold writeMu.
func (d *DB) applied(n int) error {
	d.pendingN += n
	if d.cfg.CommitInterval <= 0 || d.pendingN >= d.cfg.MaxPendingEntries {
		return d.commitLocked()
	}
	if d.pendingN == n { // the first entries of this transaction
		if d.commitTmr == nil {
			d.commitTmr = time.AfterFunc(d.cfg.CommitInterval, d.commitOnTimer)
		} else {
			d.commitTmr.Reset(d.cfg.CommitInterval)
		}
	}
	return nil
}

// commitLocked commits the pending transaction, if any. A failure loses the
// entries applied in it (fail), and the DB refuses every later use, because
// raft will not apply those entries again while this process runs. Callers
// hold writeMu.
func (d *DB) commitLocked() error {
	if d.failed != nil {
		return d.failed
	}
	if d.pending == nil {
		return nil
	}
	start := time.Now()
	err := d.pending.Commit()
	n := d.pendingN
	if err != nil {
		return d.fail(sqlitefile.WrapErr(d.db.Path, "commit apply in", err))
	}
	d.pending, d.pendingN = nil, 0
	d.hasPending.Store(false)
	if dur := time.Since(start); d.cfg.SlowCommitThreshold > 0 && dur >= d.cfg.SlowCommitThreshold {
		d.log.Warn("slow fsync", "op", "commit applied raft entries to state", "latency", dur, "entries", n, "threshold", d.cfg.SlowCommitThreshold)
	}
	return nil
}

// fail records a storage failure that lost the pending transaction (rolled
// back or failed to commit): the cache and the meta mirrors go back to what
// the file holds, and every later Apply and read returns the error.
// Callers hold writeMu.
func (d *DB) fail(err error) error {
	d.hasFailed.Store(true)
	d.failed = fmt.Errorf("%d applied raft entries are lost from state (raft applies them again after a restart): %w", d.pendingN, err)
	d.pending, d.pendingN = nil, 0
	d.hasPending.Store(false)
	d.cache.reset()
	if merr := d.loadMeta(context.Background()); merr != nil {
		d.log.Error("reload meta after a storage failure", "err", merr)
	}
	return d.failed
}

// commitForRead commits what was applied before a read goes to SQLite,
// whose reader connections see committed rows only. Callers hold fileMu
// (shared), so the order of the locks is that of Apply.
func (d *DB) commitForRead() error {
	if !d.hasPending.Load() && !d.hasFailed.Load() {
		return nil
	}
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	return d.commitLocked()
}

// commitOnTimer commits what waited CommitInterval. A failure here has no
// caller to tell and leaves this server's state behind raft's, so it ends
// the process as a failed Apply does (the FSM panics): after a restart,
// raft applies the lost entries again.
func (d *DB) commitOnTimer() {
	d.fileMu.RLock()
	defer d.fileMu.RUnlock()
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	if d.closed {
		return
	}
	if err := d.commitLocked(); err != nil {
		panic(fmt.Sprintf("statedb: %v", err))
	}
}

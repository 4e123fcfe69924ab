package raftkv

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
)

// startBackground starts the goroutines the store owns; Close stops them.
func (s *Store) startBackground(ctx context.Context) {
	if s.cfg.CompactInterval > 0 {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.runCompactor(ctx, time.Now)
		}()
	}
	if s.cfg.MaintenanceInterval > 0 {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.runMaintenance(ctx)
		}()
	}
}

// revSample records the revision the store was at at some time.
type revSample struct {
	at  time.Time
	rev int64
}

// compactTarget decides the revision to compact to: keep the newest
// keepRevs revisions and every revision younger than keepFor, judged by the
// samples (oldest first). It returns the samples still needed and ok=false
// when there is nothing to compact.
func compactTarget(now time.Time, rev, compacted, keepRevs int64, keepFor time.Duration, samples []revSample) (int64, []revSample, bool) {
	target := rev - keepRevs
	if keepFor > 0 {
		// Every revision up to the newest sample taken at least keepFor
		// ago was written before that sample, so it is old enough to go.
		cut := -1
		for i, sm := range samples {
			if now.Sub(sm.at) >= keepFor {
				cut = i
			}
		}
		if cut < 0 {
			return 0, samples, false
		}
		if samples[cut].rev < target {
			target = samples[cut].rev
		}
		samples = samples[cut:]
	}
	if target <= compacted {
		return 0, samples, false
	}
	return target, samples, true
}

// runCompactor compacts history on the leader every CompactInterval. Only
// the leader proposes compactions (they are raft commands, so every server
// applies the same ones); every server samples revisions so a new leader can
// decide soon after it takes over.
func (s *Store) runCompactor(ctx context.Context, now func() time.Time) {
	t := time.NewTicker(s.cfg.CompactInterval)
	defer t.Stop()
	samples := []revSample{{at: now(), rev: s.db.Revision()}}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, rev := now(), s.db.Revision()
		samples = append(samples, revSample{at: n, rev: rev})
		if s.raft.State() != raft.Leader {
			continue
		}
		target, kept, ok := compactTarget(n, rev, s.db.CompactRevision(), s.cfg.CompactKeepRevisions, s.cfg.CompactKeepDuration, samples)
		samples = kept
		if !ok {
			continue
		}
		// Writes queue behind other writes; do not give up on a busy
		// store just because the interval is short.
		cctx, cancel := context.WithTimeout(ctx, max(s.cfg.CompactInterval, 30*time.Second))
		err := s.Compact(cctx, target)
		cancel()
		if err != nil {
			s.log.Warn("automatic compaction failed", "target", target, "err", err)
			continue
		}
		s.log.Debug("compacted history", "revision", target, "current", rev)
	}
}

// runMaintenance gives free pages and WAL space of both files back to the
// file system, periodically and soon after each local compaction.
func (s *Store) runMaintenance(ctx context.Context) {
	t := time.NewTicker(s.cfg.MaintenanceInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.fsm.compacted:
		}
		if err := s.db.Maintain(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("state.db maintenance failed", "err", err)
		}
		if err := s.logs.Maintain(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("raft.db maintenance failed", "err", err)
		}
		s.log.Debug("gave free pages and WAL space back to the file system",
			"state_db_bytes", fileBytes(filepath.Join(s.cfg.DataDir, stateFile)),
			"raft_db_bytes", fileBytes(filepath.Join(s.cfg.DataDir, raftFile)))
	}
}

// fileBytes is the size of a SQLite file with its WAL (0 when missing).
func fileBytes(path string) int64 {
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

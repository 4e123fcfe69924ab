package raftkv

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"kedge.dev/kedge/raftstore/internal/sqlitefile"
)

// Config configures a Store. Start from DefaultConfig and set DataDir and
// NodeID at least; Open calls Validate.
type Config struct {
	// DataDir holds raft.db, state.db and snapshots/. Required.
	DataDir string
	// NodeID is this server's stable raft ID. Required.
	NodeID string
	// BindAddr is the raft TCP listen address, host:port (default
	// "127.0.0.1:7080"; port 0 picks a free port, as in tests).
	BindAddr string
	// AdvertiseAddr is the address other servers dial, host:port; empty
	// means the address the listener got (which must not be 0.0.0.0).
	AdvertiseAddr string

	// HeartbeatTimeout is raft's follower timeout before an election
	// (default 500ms). A follower notices a dead leader after one to two
	// of it, so it sets the failover time: 500ms fails over in about 1s
	// (1s, hashicorp/raft's and Consul's default, took 2s at the median).
	// Heartbeats are answered without touching the disk, so a slow SD
	// card does not start elections; raise it for links with long stalls.
	HeartbeatTimeout time.Duration
	// ElectionTimeout is raft's candidate timeout (default 500ms).
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout is how long a leader stays leader without contact
	// with a quorum (default 250ms; at most HeartbeatTimeout).
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is how often an idle leader sends followers its commit
	// index again (default 50ms); a new commit index is sent at once
	// (third_party/hashicorp-raft/KEDGE.md).
	CommitTimeout time.Duration
	// MaxAppendEntries is the most entries per append and per FSM batch
	// (default 512; raft's own default of 64 makes bursts slow).
	MaxAppendEntries int
	// SnapshotInterval is how often raft checks whether to snapshot
	// (default 2m).
	SnapshotInterval time.Duration
	// SnapshotThreshold is how many new log entries trigger a snapshot
	// (default 8192).
	SnapshotThreshold uint64
	// TrailingLogs is how many entries stay in raft.db after a snapshot, so
	// a slightly late follower needs no snapshot (default 10240).
	TrailingLogs uint64
	// SnapshotRetain is how many snapshots are kept in DataDir/snapshots
	// (default 2).
	SnapshotRetain int
	// TransportMaxPool is the number of pooled connections per peer
	// (default 3).
	TransportMaxPool int
	// TransportTimeout bounds raft RPC I/O (default 10s).
	TransportTimeout time.Duration

	// RaftDBSynchronous is PRAGMA synchronous of raft.db (default "FULL":
	// raft's safety needs the log durable before it acknowledges).
	RaftDBSynchronous string
	// StateDBSynchronous is PRAGMA synchronous of state.db (default
	// "NORMAL": a commit lost in a power cut is replayed from raft.db).
	StateDBSynchronous string
	// CheckIntegrityOnOpen runs PRAGMA quick_check on both files at Open
	// (default true; costs a read of each file).
	CheckIntegrityOnOpen bool
	// SlowSyncThreshold: commits of raft.db or state.db slower than this are
	// logged with the measured latency (default 100ms).
	SlowSyncThreshold time.Duration
	// StateCommitInterval is how long applied entries may wait to be
	// committed to state.db together, as etcd's backend batches its
	// commits for 100 ms (default 100ms; 0 commits every applied batch).
	// Reads see applied entries at once; raft.db is committed and synced
	// before an entry is applied, so a crash loses nothing: raft applies
	// the entries again from its log.
	StateCommitInterval time.Duration

	// CompactKeepRevisions is how many most recent revisions the automatic
	// compactor always keeps (default 1000).
	CompactKeepRevisions int64
	// CompactKeepDuration is how long a revision is kept at least, so a
	// watcher that reconnects within it can resume (default 5m).
	CompactKeepDuration time.Duration
	// CompactInterval is how often the leader considers compacting
	// (default 1m; negative disables the automatic compactor).
	CompactInterval time.Duration
	// MaintenanceInterval is how often each server gives free pages and WAL
	// space back to the file system (default 5m; negative disables).
	MaintenanceInterval time.Duration

	// ValueCacheBytes bounds the memory of live values kept for reads and
	// conditional writes of recently used keys, so they skip SQLite
	// (default 4 MiB; negative disables).
	ValueCacheBytes int64

	// WatchBufferSize is how many events a watcher may lag behind before its
	// channel is closed (default 4096).
	WatchBufferSize int
	// WatchReplayBatch is how many history rows a watch reads per query
	// while it catches up (default 512).
	WatchReplayBatch int
	// LinearizableReads makes Get, List and Revision confirm leadership
	// with a quorum and wait for the local state to catch up with the commit
	// index before reading (default false: read the local state, which on a
	// single voter is the same).
	LinearizableReads bool

	// JoinExisting: on a first start (no raft state) do not form a cluster
	// of one; wait to be added by Join on a member (default false).
	JoinExisting bool
	// MaxVoters is how many voters the leader admits; later servers join
	// as nonvoters (default 3; 5 survives two failures).
	MaxVoters int
	// PeerTLS secures the raft port (raft and forwarding): it is the client
	// config for dialing peers (RootCAs, Certificates) and, requiring a
	// client certificate signed by RootCAs, the server config. nil means
	// plain TCP, for tests on loopback only.
	PeerTLS *tls.Config

	// Logger receives the store's and raft's logs (default slog.Default()).
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every default set; DataDir and NodeID
// are left empty.
func DefaultConfig() Config {
	return Config{
		BindAddr:             "127.0.0.1:7080",
		HeartbeatTimeout:     500 * time.Millisecond,
		ElectionTimeout:      500 * time.Millisecond,
		LeaderLeaseTimeout:   250 * time.Millisecond,
		CommitTimeout:        50 * time.Millisecond,
		MaxAppendEntries:     512,
		SnapshotInterval:     2 * time.Minute,
		SnapshotThreshold:    8192,
		TrailingLogs:         10240,
		SnapshotRetain:       2,
		TransportMaxPool:     3,
		TransportTimeout:     10 * time.Second,
		RaftDBSynchronous:    "FULL",
		StateDBSynchronous:   "NORMAL",
		CheckIntegrityOnOpen: true,
		SlowSyncThreshold:    100 * time.Millisecond,
		StateCommitInterval:  100 * time.Millisecond,
		CompactKeepRevisions: 1000,
		CompactKeepDuration:  5 * time.Minute,
		CompactInterval:      time.Minute,
		MaintenanceInterval:  5 * time.Minute,
		ValueCacheBytes:      4 << 20,
		WatchBufferSize:      4096,
		WatchReplayBatch:     512,
		MaxVoters:            3,
	}
}

// Validate reports every invalid field at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.DataDir == "" {
		bad("DataDir is required")
	}
	if c.NodeID == "" {
		bad("NodeID is required")
	}
	if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
		bad("BindAddr %q: %v", c.BindAddr, err)
	}
	if c.AdvertiseAddr != "" {
		if _, err := net.ResolveTCPAddr("tcp", c.AdvertiseAddr); err != nil {
			bad("AdvertiseAddr %q: %v", c.AdvertiseAddr, err)
		}
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"HeartbeatTimeout", c.HeartbeatTimeout}, {"ElectionTimeout", c.ElectionTimeout},
		{"LeaderLeaseTimeout", c.LeaderLeaseTimeout}, {"CommitTimeout", c.CommitTimeout},
		{"SnapshotInterval", c.SnapshotInterval}, {"TransportTimeout", c.TransportTimeout},
		{"SlowSyncThreshold", c.SlowSyncThreshold},
	}
	for _, p := range positive {
		if p.d <= 0 {
			bad("%s must be positive, got %v", p.name, p.d)
		}
	}
	if c.StateCommitInterval < 0 || c.StateCommitInterval > time.Second {
		bad("StateCommitInterval must be in 0..1s, got %v", c.StateCommitInterval)
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		bad("LeaderLeaseTimeout %v must not exceed HeartbeatTimeout %v", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.MaxAppendEntries < 1 || c.MaxAppendEntries > 1024 {
		bad("MaxAppendEntries must be in 1..1024, got %d", c.MaxAppendEntries)
	}
	if c.SnapshotThreshold == 0 {
		bad("SnapshotThreshold must be positive")
	}
	if c.SnapshotRetain < 1 {
		bad("SnapshotRetain must be at least 1, got %d", c.SnapshotRetain)
	}
	if c.TransportMaxPool < 1 {
		bad("TransportMaxPool must be at least 1, got %d", c.TransportMaxPool)
	}
	for name, s := range map[string]string{"RaftDBSynchronous": c.RaftDBSynchronous, "StateDBSynchronous": c.StateDBSynchronous} {
		if err := sqlitefile.ValidateSynchronous(s); err != nil {
			bad("%s: %v", name, err)
		}
	}
	if c.CompactKeepRevisions < 1 {
		bad("CompactKeepRevisions must be at least 1, got %d", c.CompactKeepRevisions)
	}
	if c.CompactKeepDuration < 0 {
		bad("CompactKeepDuration must not be negative, got %v", c.CompactKeepDuration)
	}
	if c.CompactInterval == 0 {
		bad("CompactInterval must be positive (negative disables), got 0")
	}
	if c.MaintenanceInterval == 0 {
		bad("MaintenanceInterval must be positive (negative disables), got 0")
	}
	if c.WatchBufferSize < 1 {
		bad("WatchBufferSize must be at least 1, got %d", c.WatchBufferSize)
	}
	if c.WatchReplayBatch < 1 {
		bad("WatchReplayBatch must be at least 1, got %d", c.WatchReplayBatch)
	}
	if c.MaxVoters < 1 {
		bad("MaxVoters must be at least 1, got %d", c.MaxVoters)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid raftstore config: %w", err)
	}
	return nil
}

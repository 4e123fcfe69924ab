// Package raftkv implements raftstore.Store: a revisioned key-value store
// replicated with hashicorp/raft, with the raft log in SQLite (sqlitelog)
// and the state in SQLite (statedb).
//
// Writes are raft commands (see command.go for the versioned format) applied
// by the FSM, which decides conditional writes atomically with the write and
// returns the outcome to the proposer through raft's ApplyFuture. Reads on
// the local server go straight to state.db; readBarrier is the single place
// that decides what a read waits for first (nothing, or a quorum check when
// Config.LinearizableReads is set).
//
// Today a cluster has a single voter, bootstrapped on first start. The seams
// for more servers are: the TCP transport bound to Config.BindAddr and
// advertised as Config.AdvertiseAddr; Store.apply, the one place writes enter
// raft (a follower would forward there); waitReady, which Open uses to wait
// for a leader.
//
// Durability: raft.db is written with synchronous=FULL (raft acknowledges
// only what is on disk); state.db with synchronous=NORMAL, because it records
// the last applied raft index in the same transaction as each change, so
// whatever a power cut takes from it is applied again from raft.db at the
// next Open (raft restores the newest snapshot first when state.db is behind
// it). Open refuses a state.db that is ahead of raft.db.
//
// Caller duties:
//   - Call Open once per data directory and Close when done; a data
//     directory belongs to one process.
//   - Keep NodeID and, once there are several servers, BindAddr and
//     AdvertiseAddr stable across restarts (port 0 is for tests).
//   - A write whose context ends early may still commit: re-read before
//     retrying a non-idempotent write.
//   - When a watch channel closes, watch again from the last revision seen;
//     ErrCompacted then means "relist".
package raftkv

// Package raftkv implements raftstore.Store: a revisioned key-value store
// replicated with hashicorp/raft, with the raft log in SQLite (sqlitelog)
// and the state in SQLite (statedb).
//
// Writes are raft commands (see command.go for the versioned format) applied
// by the FSM, which decides conditional writes atomically with the write and
// returns the outcome to the proposer through raft's ApplyFuture. Reads on
// the local server go straight to state.db; readBarrier is the single place
// that decides what a read waits for first (nothing, or a quorum check when
// Config.LinearizableReads is set; a leader that is the only voter is its
// own quorum and checks nothing but its configuration).
//
// Clusters: the first server bootstraps a cluster of one; others start
// with JoinExisting and are added by Join on any member (forwarded to the
// leader, which admits MaxVoters voters and then nonvoters: membership.go).
// The raft port carries raft and kedge's forwarding RPC (transport.go,
// forward.go), under mutual TLS when PeerTLS is set: followers forward
// writes (apply) and ask the leader for a read index (readBarrier). A
// forwarded write returns once this server applied it too. Leadership
// reports leadership after a barrier of the term, for leader-only work.
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
//   - After Open of a server that NeedsJoin, call Join on a member with
//     this server's ID and Addr, then WaitReady.
//   - A write whose context ends early may still commit: re-read before
//     retrying a non-idempotent write.
//   - When a watch channel closes, watch again from the last revision seen;
//     ErrCompacted then means "relist".
package raftkv

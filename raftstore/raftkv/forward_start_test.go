package raftkv

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"
)

// A peer's forwarding request that arrives while the server is still
// starting raft (the forwarding listener shares the raft port and accepts
// first) waits for raft instead of using a nil one, and the connection is
// closed if the store closes meanwhile. Before the fix this panicked in
// (*raft.Raft).State, killing a restarting server of a cluster.
func TestForwardRequestBeforeRaftStarts(t *testing.T) {
	s := &Store{raftReady: make(chan struct{})}
	for _, kind := range []string{"readindex", "apply", "status"} {
		t.Run(kind, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			s.bgCtx = ctx
			server, client := net.Pipe()
			done := make(chan struct{})
			go func() { defer close(done); s.serveForwardConn(server) }()
			go json.NewEncoder(client).Encode(fwdRequest{Kind: kind, TimeoutMS: 1000})
			select {
			case <-done:
				t.Fatal("the connection was served or dropped before raft started")
			case <-time.After(100 * time.Millisecond):
			}
			cancel() // the store closes before raft ever started
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the connection outlived the store")
			}
			client.Close()
		})
	}
}

package linearize

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"kedge.dev/kedge/raftstore/raftkv"
)

// StoreClients against a real raftkv store yield a linearizable history.
func TestStoreClientOnRaftkv(t *testing.T) {
	cfg := raftkv.DefaultConfig()
	cfg.DataDir, cfg.NodeID, cfg.BindAddr = t.TempDir(), "n1", "127.0.0.1:0"
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := raftkv.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var clients []Client
	for i := 0; i < 6; i++ {
		clients = append(clients, StoreClient{Store: s, Prefix: "/lin/"})
	}
	h := Record(context.Background(), Config{Duration: time.Second, Seed: 2}, clients)
	res := Check(h, time.Minute)
	if res.Verdict != porcupine.Ok || h.Completed < 100 {
		t.Fatalf("verdict %s over %d completed ops", res.Verdict, h.Completed)
	}
}

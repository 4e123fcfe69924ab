package raftkv

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/raft"
)

// ErrUnknownServer: the server named is not a member of the cluster.
var ErrUnknownServer = errors.New("no such server in the cluster")

// Member is one server of the cluster as Members reports it.
type Member struct {
	// ID is the server's raft ID (kedge uses the node name).
	ID string `json:"id"`
	// Address is the raft address, host:port.
	Address string `json:"address"`
	// Suffrage is "voter" or "nonvoter".
	Suffrage string `json:"suffrage"`
	// Leader is true for the current leader.
	Leader bool `json:"leader"`
	// Reachable is false when the member did not answer a status call.
	Reachable bool `json:"reachable"`
	// State is the member's own raft state (Leader, Follower, Candidate).
	State string `json:"state,omitempty"`
	// LastContact is how long ago the member last heard from the leader
	// (0 for the leader itself).
	LastContact time.Duration `json:"lastContact"`
	// AppliedIndex and Revision are how far the member has applied.
	AppliedIndex uint64 `json:"appliedIndex"`
	Revision     int64  `json:"revision"`
}

// decideSuffrage is the membership rule: a server already in the
// configuration keeps its suffrage (a rejoin after restart); a new server
// becomes a voter while fewer than maxVoters voters exist, else a nonvoter
// that replicates but does not count for quorum.
func decideSuffrage(servers []raft.Server, id raft.ServerID, maxVoters int) raft.ServerSuffrage {
	voters := 0
	for _, s := range servers {
		if s.ID == id {
			if s.Suffrage == raft.Staging {
				return raft.Voter
			}
			return s.Suffrage
		}
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	if voters < maxVoters {
		return raft.Voter
	}
	return raft.Nonvoter
}

// promotions returns the nonvoters to promote so the cluster gets back to
// maxVoters voters (after a voter was removed), in ID order so every leader
// picks the same ones.
func promotions(servers []raft.Server, maxVoters int) []raft.ServerID {
	voters := 0
	var non []raft.ServerID
	for _, s := range servers {
		switch s.Suffrage {
		case raft.Voter:
			voters++
		case raft.Nonvoter:
			non = append(non, s.ID)
		}
	}
	sort.Slice(non, func(i, j int) bool { return non[i] < non[j] })
	var out []raft.ServerID
	for _, id := range non {
		if voters >= maxVoters {
			break
		}
		out = append(out, id)
		voters++
	}
	return out
}

func suffrageName(s raft.ServerSuffrage) string {
	switch s {
	case raft.Voter:
		return "voter"
	case raft.Nonvoter:
		return "nonvoter"
	}
	return "staging"
}

// Join adds the server id reachable at raft address addr to the cluster
// (as decideSuffrage says) and returns its suffrage, "voter" or
// "nonvoter". It runs on the leader; any server forwards it there.
func (s *Store) Join(ctx context.Context, id, addr string) (string, error) {
	if err := s.gate.enter(); err != nil {
		return "", fmt.Errorf("join %s: %w", id, err)
	}
	defer s.gate.exit()
	resp, err := s.toLeader(ctx, fwdRequest{Kind: "join", ID: id, Addr: addr}, func(ctx context.Context) (fwdResponse, error) {
		suf, err := s.joinLocal(ctx, id, addr)
		return fwdResponse{Suffrage: suf}, err
	})
	if err != nil {
		return "", fmt.Errorf("join %s at %s: %w", id, addr, err)
	}
	return resp.Suffrage, nil
}

func (s *Store) joinLocal(ctx context.Context, id, addr string) (string, error) {
	if id == "" || addr == "" {
		return "", errors.New("server ID and address are required")
	}
	cf := s.raft.GetConfiguration()
	if err := waitFuture(ctx, cf); err != nil {
		return "", err
	}
	servers := cf.Configuration().Servers
	for _, srv := range servers {
		if srv.ID != raft.ServerID(id) && srv.Address == raft.ServerAddress(addr) {
			return "", fmt.Errorf("address %s is already used by server %q; Try: kedge server remove %s", addr, srv.ID, srv.ID)
		}
	}
	suf := decideSuffrage(servers, raft.ServerID(id), s.cfg.MaxVoters)
	var f raft.IndexFuture
	if suf == raft.Voter {
		f = s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 0)
	} else {
		f = s.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 0)
	}
	if err := waitFuture(ctx, f); err != nil {
		return "", err
	}
	s.log.Info("server joined the cluster", "id", id, "addr", addr, "suffrage", suffrageName(suf))
	return suffrageName(suf), nil
}

// Remove takes server id out of the cluster (a dead server, or one that
// leaves) and promotes nonvoters to keep MaxVoters voters. It runs on the
// leader; any server forwards it there.
func (s *Store) Remove(ctx context.Context, id string) error {
	if err := s.gate.enter(); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	defer s.gate.exit()
	_, err := s.toLeader(ctx, fwdRequest{Kind: "remove", ID: id}, func(ctx context.Context) (fwdResponse, error) {
		return fwdResponse{}, s.removeLocal(ctx, id)
	})
	if err != nil {
		return fmt.Errorf("remove server %s: %w", id, err)
	}
	return nil
}

func (s *Store) removeLocal(ctx context.Context, id string) error {
	cf := s.raft.GetConfiguration()
	if err := waitFuture(ctx, cf); err != nil {
		return err
	}
	found := false
	for _, srv := range cf.Configuration().Servers {
		found = found || srv.ID == raft.ServerID(id)
	}
	if !found {
		return fmt.Errorf("%w: %q", ErrUnknownServer, id)
	}
	if err := waitFuture(ctx, s.raft.RemoveServer(raft.ServerID(id), 0, 0)); err != nil {
		return err
	}
	s.log.Info("server removed from the cluster", "id", id)
	if s.raft.State() != raft.Leader {
		return nil // it was this server: the new leader promotes
	}
	cf = s.raft.GetConfiguration()
	if err := waitFuture(ctx, cf); err != nil {
		return err
	}
	for _, p := range promotions(cf.Configuration().Servers, s.cfg.MaxVoters) {
		addr := ""
		for _, srv := range cf.Configuration().Servers {
			if srv.ID == p {
				addr = string(srv.Address)
			}
		}
		if err := waitFuture(ctx, s.raft.AddVoter(p, raft.ServerAddress(addr), 0, 0)); err != nil {
			return fmt.Errorf("promote %s to voter: %w", p, err)
		}
		s.log.Info("nonvoter promoted to voter", "id", p)
	}
	return nil
}

// Members lists the servers of the cluster with each one's own status,
// asked over the forwarding channel (a member that does not answer within
// a second is listed as not reachable).
func (s *Store) Members(ctx context.Context) ([]Member, error) {
	if err := s.gate.enter(); err != nil {
		return nil, fmt.Errorf("members: %w", err)
	}
	defer s.gate.exit()
	cf := s.raft.GetConfiguration()
	if err := waitFuture(ctx, cf); err != nil {
		return nil, fmt.Errorf("members: %w", err)
	}
	leaderAddr, leaderID := s.raft.LeaderWithID()
	servers := cf.Configuration().Servers
	out := make([]Member, len(servers))
	done := make(chan struct{}, len(servers))
	for i, srv := range servers {
		out[i] = Member{ID: string(srv.ID), Address: string(srv.Address), Suffrage: suffrageName(srv.Suffrage),
			Leader: srv.ID == leaderID && srv.Address == leaderAddr}
		go func() {
			defer func() { done <- struct{}{} }()
			var st peerStatus
			if srv.ID == raft.ServerID(s.cfg.NodeID) {
				st = s.localStatus()
			} else {
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				resp, err := s.call(cctx, string(srv.Address), fwdRequest{Kind: "status"})
				cancel()
				if err != nil || resp.Status == nil {
					return
				}
				st = *resp.Status
			}
			out[i].Reachable, out[i].State, out[i].LastContact = true, st.State, st.LastContact
			out[i].AppliedIndex, out[i].Revision = st.AppliedIndex, st.Revision
		}()
	}
	for range servers {
		<-done
	}
	return out, nil
}

func (s *Store) localStatus() peerStatus {
	applied, _ := s.db.AppliedIndex()
	st := peerStatus{State: s.raft.State().String(), Term: s.raft.CurrentTerm(), AppliedIndex: applied, Revision: s.db.Revision()}
	if s.raft.State() != raft.Leader {
		if lc := s.raft.LastContact(); !lc.IsZero() {
			st.LastContact = time.Since(lc)
		} else {
			st.LastContact = -1
		}
	}
	return st
}

// Leader returns the current leader's ID and raft address ("" when an
// election is running).
func (s *Store) Leader() (id, addr string) {
	a, i := s.raft.LeaderWithID()
	return string(i), string(a)
}

// Handoff transfers leadership to another voter when this server leads
// one of several, so a planned stop costs no election timeout. It is a
// no-op otherwise.
func (s *Store) Handoff(ctx context.Context) error {
	if s.raft.State() != raft.Leader || s.voters() < 2 {
		return nil
	}
	if err := waitFuture(ctx, s.raft.LeadershipTransfer()); err != nil {
		return fmt.Errorf("transfer leadership: %w", err)
	}
	s.log.Info("leadership handed off", "to", func() string { id, _ := s.Leader(); return id }())
	return nil
}

// Leave hands off leadership and removes this server from the cluster, so
// the others no longer count it for quorum. The store keeps running as a
// detached server until Close.
func (s *Store) Leave(ctx context.Context) error {
	if err := s.Handoff(ctx); err != nil {
		return err
	}
	if s.voters() < 2 && s.raft.State() == raft.Leader {
		return errors.New("leave: this is the last voter; Try: stop it without leaving")
	}
	return s.Remove(ctx, s.cfg.NodeID)
}

func (s *Store) voters() int {
	cf := s.raft.GetConfiguration()
	if cf.Error() != nil {
		return 0
	}
	n := 0
	for _, srv := range cf.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			n++
		}
	}
	return n
}

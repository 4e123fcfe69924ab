package raftkv

import (
	"slices"
	"testing"

	"github.com/hashicorp/raft"
)

func servers(spec ...string) []raft.Server {
	var out []raft.Server
	for _, s := range spec {
		suf := raft.Voter
		if s[0] == '-' {
			suf, s = raft.Nonvoter, s[1:]
		}
		out = append(out, raft.Server{ID: raft.ServerID(s), Address: raft.ServerAddress(s + ":1"), Suffrage: suf})
	}
	return out
}

func TestDecideSuffrage(t *testing.T) {
	tests := []struct {
		name      string
		servers   []raft.Server
		id        string
		maxVoters int
		want      raft.ServerSuffrage
	}{
		{"second server is a voter", servers("a"), "b", 3, raft.Voter},
		{"third server is a voter", servers("a", "b"), "c", 3, raft.Voter},
		{"fourth server is a nonvoter", servers("a", "b", "c"), "d", 3, raft.Nonvoter},
		{"fourth and fifth are voters with five", servers("a", "b", "c"), "d", 5, raft.Voter},
		{"fifth with five", servers("a", "b", "c", "d"), "e", 5, raft.Voter},
		{"sixth with five", servers("a", "b", "c", "d", "e"), "f", 5, raft.Nonvoter},
		{"nonvoters do not count", servers("a", "-x", "-y"), "b", 3, raft.Voter},
		{"rejoining voter stays voter even when full", servers("a", "b", "c"), "b", 3, raft.Voter},
		{"rejoining nonvoter stays nonvoter", servers("a", "b", "-c"), "c", 3, raft.Nonvoter},
		{"single-voter cluster", servers("a"), "b", 1, raft.Nonvoter},
		{"staging becomes voter", []raft.Server{{ID: "a", Suffrage: raft.Voter}, {ID: "b", Suffrage: raft.Staging}}, "b", 3, raft.Voter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decideSuffrage(tt.servers, raft.ServerID(tt.id), tt.maxVoters); got != tt.want {
				t.Errorf("decideSuffrage = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPromotions(t *testing.T) {
	tests := []struct {
		name      string
		servers   []raft.Server
		maxVoters int
		want      []raft.ServerID
	}{
		{"full", servers("a", "b", "c", "-d"), 3, nil},
		{"one voter lost", servers("a", "b", "-e", "-d"), 3, []raft.ServerID{"d"}},
		{"two lost with five", servers("a", "b", "c", "-z", "-y", "-x"), 5, []raft.ServerID{"x", "y"}},
		{"no nonvoters", servers("a", "b"), 3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := promotions(tt.servers, tt.maxVoters); !slices.Equal(got, tt.want) {
				t.Errorf("promotions = %v, want %v", got, tt.want)
			}
		})
	}
}

package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kedge.dev/kedge/raftstore/raftkv"
)

func TestClusterOptions(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "join")
	os.WriteFile(tokFile, []byte("K10"+strings.Repeat("ab", 32)+"::0123456789abcdef0123\n"), 0o600)
	file := filepath.Join(dir, "kedge.yaml")
	os.WriteFile(file, []byte("join: https://10.0.0.1:6443\ntokenFile: "+tokFile+"\nvoters: 5\nraftHeartbeatTimeout: 300ms\nraftSnapshotThreshold: 100\n"), 0o600)
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, c raftkv.Config, o clusterOptions)
	}{
		{"defaults form a cluster of three voters", nil, "", func(t *testing.T, c raftkv.Config, o clusterOptions) {
			d := raftkv.DefaultConfig()
			if c.MaxVoters != 3 || c.JoinExisting || c.HeartbeatTimeout != d.HeartbeatTimeout || !c.LinearizableReads {
				t.Errorf("got %+v", c)
			}
			if c.AdvertiseAddr != "127.0.0.1:6444" {
				t.Errorf("raft advertised as %q, want the advertise address with the raft port", c.AdvertiseAddr)
			}
		}},
		{"file", []string{"--config", file}, "", func(t *testing.T, c raftkv.Config, o clusterOptions) {
			if !c.JoinExisting || c.MaxVoters != 5 || c.HeartbeatTimeout != 300*time.Millisecond || c.SnapshotThreshold != 100 {
				t.Errorf("got %+v", c)
			}
			if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
				t.Errorf("lease %v above heartbeat %v", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
			}
			if !strings.HasSuffix(o.Token, "0123456789abcdef0123") {
				t.Errorf("token not read from tokenFile: %q", o.Token)
			}
		}},
		{"flags win", []string{"--config", file, "--voters", "3", "--raft-election-timeout", "2s"}, "", func(t *testing.T, c raftkv.Config, o clusterOptions) {
			if c.MaxVoters != 3 || c.ElectionTimeout != 2*time.Second {
				t.Errorf("got %+v", c)
			}
		}},
		{"even voters", []string{"--voters", "4"}, "--voters 4", nil},
		{"join without token", []string{"--join", "https://10.0.0.1:6443"}, "needs --token", nil},
		{"fixed raft address kept", []string{"--raft-listen", "10.1.2.3:7000"}, "", func(t *testing.T, c raftkv.Config, o clusterOptions) {
			if c.AdvertiseAddr != "" || c.BindAddr != "10.1.2.3:7000" {
				t.Errorf("bind %q advertise %q", c.BindAddr, c.AdvertiseAddr)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseServerFlags(append(tc.args, "--advertise-address", "127.0.0.1"), io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := raftkv.DefaultConfig()
			c.BindAddr = cfg.RaftListen
			cfg.clusterOptions.applyStore(&c, cfg.AdvertiseAddress, nil)
			tc.check(t, c, cfg.clusterOptions)
		})
	}
}

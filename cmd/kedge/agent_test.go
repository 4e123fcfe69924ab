package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseAgentFlags(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "join")
	os.WriteFile(tok, []byte("K10abc::secret\n"), 0o600)
	base := []string{"--data-dir", t.TempDir(), "--advertise-address", "10.0.0.9", "--node-name", "edge-1"}
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"ok", []string{"--server", "https://10.0.0.1:6443", "--token-file", tok}, ""},
		{"no server", nil, "--server"},
		{"plain http", []string{"--server", "http://10.0.0.1:6443"}, "--server"},
		{"missing token file", []string{"--server", "https://10.0.0.1:6443", "--token-file", tok + ".gone"}, "--token-file"},
		{"bad pod cidr", []string{"--server", "https://10.0.0.1:6443", "--pod-cidr", "10.0.0.0"}, "--pod-cidr"},
		{"relative cgroup", []string{"--server", "https://10.0.0.1:6443", "--cgroup-root", "kedge"}, "--cgroup-root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseAgentFlags(append(append([]string{}, base...), tc.args...), io.Discard)
			if tc.wantErr == "" {
				if err != nil || cfg.Token != "K10abc::secret" || cfg.NodeName != "edge-1" || cfg.AdvertiseAddress != "10.0.0.9" {
					t.Fatalf("cfg %+v, err %v", cfg, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want one naming %s", err, tc.wantErr)
			}
		})
	}
}

func TestAgentGCPercent(t *testing.T) {
	for _, tc := range []struct {
		gogc   string
		want   int
		wantOK bool
	}{
		{"", 25, true},
		{"100", 0, false}, // the operator's GOGC wins
		{"off", 0, false},
	} {
		got, ok := agentGCPercent(tc.gogc)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("agentGCPercent(%q) = %d, %v; want %d, %v", tc.gogc, got, ok, tc.want, tc.wantOK)
		}
	}
}

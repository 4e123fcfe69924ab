package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseServerFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "kedge.yaml")
	if err := os.WriteFile(file, []byte("dataDir: /srv/kedge\nlisten: 127.0.0.1:7443\nnodeName: box-1\nadvertiseAddress: 10.0.0.5\ntimerSlack: 2ms\ndisableAgent: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("dataDirr: /x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		check   func(serverConfig) bool
		wantErr string
	}{
		{"defaults", []string{"--advertise-address", "127.0.0.1"}, func(c serverConfig) bool {
			return c.DataDir == "/var/lib/kedge" && c.Listen == "0.0.0.0:6443" && c.PodCIDR == "10.42.0.0/24" && c.TimerSlack.Duration == time.Millisecond
		}, ""},
		{"file sets values", []string{"--config", file}, func(c serverConfig) bool {
			return c.DataDir == "/srv/kedge" && c.Listen == "127.0.0.1:7443" && c.NodeName == "box-1" && c.AdvertiseAddress == "10.0.0.5" && c.TimerSlack.Duration == 2*time.Millisecond && c.DisableAgent
		}, ""},
		{"timer slack off", []string{"--timer-slack", "0", "--advertise-address", "127.0.0.1"}, func(c serverConfig) bool {
			return c.TimerSlack.Duration == 0
		}, ""},
		{"negative timer slack", []string{"--timer-slack", "-1ms", "--advertise-address", "127.0.0.1"}, nil, "--timer-slack"},
		{"huge timer slack", []string{"--timer-slack", "1m", "--advertise-address", "127.0.0.1"}, nil, "--timer-slack"},
		{"flags win over file", []string{"--config=" + file, "--listen", "127.0.0.1:8443"}, func(c serverConfig) bool {
			return c.Listen == "127.0.0.1:8443" && c.DataDir == "/srv/kedge"
		}, ""},
		{"shipped example config", []string{"--config", "../../configs/kedge.yaml", "--advertise-address", "127.0.0.1"}, func(c serverConfig) bool {
			d := defaultServerConfig()
			return c.DataDir == d.DataDir && c.Listen == d.Listen && c.PodCIDR == d.PodCIDR && c.NodeName == d.NodeName && !c.DisableAgent
		}, ""},
		{"agent on by default", []string{"--advertise-address", "127.0.0.1"}, func(c serverConfig) bool { return !c.DisableAgent }, ""},
		{"disable agent", []string{"--disable-agent", "--advertise-address", "127.0.0.1"}, func(c serverConfig) bool { return c.DisableAgent }, ""},
		{"unknown key in file", []string{"--config", bad}, nil, `unknown field "dataDirr"`},
		{"bad address", []string{"--listen", "nope"}, nil, "--listen"},
		{"bad cidr", []string{"--pod-cidr", "10.0.0.0/33", "--advertise-address", "127.0.0.1"}, nil, "--pod-cidr"},
		{"relative cgroup", []string{"--cgroup-root", "kedge", "--advertise-address", "127.0.0.1"}, nil, "absolute cgroup"},
		{"bad log level", []string{"--log-level", "loud", "--advertise-address", "127.0.0.1"}, nil, "--log-level"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseServerFlags(tc.args, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("config %+v", c)
			}
		})
	}
}

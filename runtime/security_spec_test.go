package runtime

import (
	"errors"
	"slices"
	"testing"

	"github.com/moby/sys/user"
	devconfig "github.com/opencontainers/cgroups/devices/config"
)

func TestCPUSharesToWeight(t *testing.T) {
	// Kubernetes' conversion: 1 + ((shares-2)*9999)/262142.
	for _, tc := range []struct{ shares, weight uint64 }{
		{0, 1}, {2, 1}, {1024, 39}, {102, 4}, {262144, 10000}, {1 << 30, 10000},
	} {
		if got := CPUSharesToWeight(tc.shares); got != tc.weight {
			t.Errorf("CPUSharesToWeight(%d) = %d, want %d", tc.shares, got, tc.weight)
		}
	}
}

func TestCgroupResourcesV2(t *testing.T) {
	r := cgroupResources(Resources{CPUShares: 1024, CPUQuota: 20000, CPUPeriod: 100000, MemoryLimit: 1 << 20, PidsLimit: 7}, hostFeatures{v2: true, memsw: true})
	if r.CpuShares != 0 || r.CpuWeight != 39 || r.CpuQuota != 20000 || r.Memory != 1<<20 || r.MemorySwap != 1<<20 || *r.PidsLimit != 7 {
		t.Errorf("v2 resources %+v", r)
	}
	r = cgroupResources(Resources{CPUShares: 1024}, hostFeatures{})
	if r.CpuShares != 1024 || r.CpuWeight != 0 || r.PidsLimit != nil {
		t.Errorf("v1 resources %+v", r)
	}
}

func TestCapabilitySet(t *testing.T) {
	tests := []struct {
		name       string
		sec        Security
		has, hasNo []string
		err        bool
	}{
		{"default", Security{}, []string{"CAP_CHOWN", "CAP_NET_RAW"}, []string{"CAP_SYS_ADMIN"}, false},
		{"drop and add", Security{CapDrop: []string{"net_raw", "CAP_CHOWN"}, CapAdd: []string{"SYS_ADMIN"}},
			[]string{"CAP_SYS_ADMIN", "CAP_KILL"}, []string{"CAP_NET_RAW", "CAP_CHOWN"}, false},
		{"drop all add one", Security{CapDrop: []string{"ALL"}, CapAdd: []string{"NET_BIND_SERVICE"}},
			[]string{"CAP_NET_BIND_SERVICE"}, []string{"CAP_CHOWN", "CAP_KILL"}, false},
		{"add all", Security{CapAdd: []string{"all"}}, []string{"CAP_SYS_ADMIN", "CAP_SYS_MODULE"}, nil, false},
		{"privileged", Security{Privileged: true, CapDrop: []string{"ALL"}}, []string{"CAP_SYS_ADMIN"}, nil, false},
		{"unknown", Security{CapAdd: []string{"FLY"}}, nil, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			caps, err := capabilitySet(tc.sec, hostFeatures{})
			if tc.err {
				if !errors.Is(err, ErrInvalidSpec) {
					t.Fatalf("err = %v, want ErrInvalidSpec", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tc.has {
				if !slices.Contains(caps, c) {
					t.Errorf("%s missing from %v", c, caps)
				}
			}
			for _, c := range tc.hasNo {
				if slices.Contains(caps, c) {
					t.Errorf("%s present in %v", c, caps)
				}
			}
		})
	}
}

func TestLibcontainerConfigSecurity(t *testing.T) {
	uid := int64(1000)
	oom := -997
	spec := ContainerSpec{ID: "c", Security: Security{
		ReadOnlyRootfs: true, NoNewPrivileges: true, RunAsUser: &uid, OOMScoreAdj: &oom, Seccomp: SeccompUnconfined,
	}}
	cfg, err := libcontainerConfig(spec, "/rootfs", "/kedge/c", hostFeatures{minOOMScoreAdj: -1000})
	if err != nil {
		t.Fatal(err)
	}
	// Without CAP_SYS_RESOURCE the score cannot go below kedge's own.
	if clamped, err := libcontainerConfig(spec, "/rootfs", "/kedge/c", hostFeatures{minOOMScoreAdj: -10}); err != nil || *clamped.OomScoreAdj != -10 {
		t.Errorf("clamped oom_score_adj %v, %v; want -10", clamped.OomScoreAdj, err)
	}
	if !cfg.Readonlyfs || !cfg.NoNewPrivileges || cfg.OomScoreAdj == nil || *cfg.OomScoreAdj != -997 || cfg.Seccomp != nil {
		t.Errorf("config: readonly %v nnp %v oom %v seccomp %v", cfg.Readonlyfs, cfg.NoNewPrivileges, cfg.OomScoreAdj, cfg.Seccomp)
	}
	if len(cfg.MaskPaths) == 0 || len(cfg.ReadonlyPaths) == 0 {
		t.Error("masked/readonly paths missing")
	}

	priv, err := libcontainerConfig(ContainerSpec{ID: "p", Security: Security{Privileged: true, Seccomp: SeccompRuntimeDefault}}, "/rootfs", "/kedge/p", hostFeatures{})
	if err != nil {
		t.Fatal(err)
	}
	if len(priv.MaskPaths) != 0 || len(priv.ReadonlyPaths) != 0 || priv.Seccomp != nil {
		t.Errorf("privileged: masked %v readonly %v seccomp %v", priv.MaskPaths, priv.ReadonlyPaths, priv.Seccomp)
	}
	if !priv.Cgroups.Resources.Devices[0].Allow || !slices.ContainsFunc(priv.Devices, func(d *devconfig.Device) bool { return d.Path == "/dev/null" }) {
		t.Error("privileged: devices not all allowed")
	}
	for _, m := range priv.Mounts {
		if m.Destination == "/sys" && m.Flags&1 != 0 {
			t.Error("privileged: /sys is read-only")
		}
	}

	if _, err := libcontainerConfig(ContainerSpec{ID: "l", Security: Security{Seccomp: "localhost/x.json"}}, "/rootfs", "/kedge/l", hostFeatures{}); !errors.Is(err, ErrSeccompUnsupported) {
		t.Errorf("localhost profile: err = %v", err)
	}
}

func TestUserSpec(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	tests := []struct {
		image string
		sec   Security
		want  string
	}{
		{"", Security{}, ""},
		{"nobody", Security{}, "nobody"},
		{"nobody", Security{RunAsUser: i(1000)}, "1000"},
		{"nobody:nogroup", Security{RunAsUser: i(1000)}, "1000"},
		{"nobody:nogroup", Security{RunAsGroup: i(5)}, "nobody:5"},
		{"", Security{RunAsGroup: i(5)}, "0:5"},
		{"", Security{RunAsUser: i(7), RunAsGroup: i(8)}, "7:8"},
	}
	for _, tc := range tests {
		if got := userSpec(tc.image, tc.sec); got != tc.want {
			t.Errorf("userSpec(%q, %+v) = %q, want %q", tc.image, tc.sec, got, tc.want)
		}
	}
}

func TestCheckNonRoot(t *testing.T) {
	zero, one := int64(0), int64(1)
	tests := []struct {
		uid  int
		sec  Security
		fail bool
	}{
		{0, Security{}, false},
		{0, Security{RunAsNonRoot: true}, true},
		{0, Security{RunAsNonRoot: true, RunAsUser: &zero}, true},
		{1, Security{RunAsNonRoot: true, RunAsUser: &one}, false},
	}
	for _, tc := range tests {
		err := checkNonRoot(&user.ExecUser{Uid: tc.uid}, tc.sec)
		if tc.fail != errors.Is(err, ErrRunAsNonRoot) {
			t.Errorf("uid %d %+v: err %v", tc.uid, tc.sec, err)
		}
	}
}

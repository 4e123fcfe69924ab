package runtime

import (
	"errors"
	"slices"
	"testing"

	"github.com/opencontainers/runc/libcontainer/configs"
)

func TestProcessArgs(t *testing.T) {
	img := Image{Entrypoint: []string{"/ep"}, Cmd: []string{"c1", "c2"}}
	tests := []struct {
		name          string
		command, args []string
		img           Image
		want          []string
		wantErr       error
	}{
		{"image defaults", nil, nil, img, []string{"/ep", "c1", "c2"}, nil},
		{"args replace cmd", nil, []string{"a"}, img, []string{"/ep", "a"}, nil},
		{"command replaces entrypoint and cmd", []string{"sh"}, nil, img, []string{"sh"}, nil},
		{"command and args", []string{"sh", "-c"}, []string{"echo"}, img, []string{"sh", "-c", "echo"}, nil},
		{"cmd only image", nil, nil, Image{Cmd: []string{"sh"}}, []string{"sh"}, nil},
		{"args without entrypoint", nil, []string{"/server"}, Image{Cmd: []string{"sh"}}, []string{"/server"}, nil},
		{"nothing", nil, nil, Image{}, nil, ErrInvalidSpec},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := processArgs(ContainerSpec{Command: tc.command, Args: tc.args}, tc.img)
			if !errors.Is(err, tc.wantErr) || !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestMergeEnv(t *testing.T) {
	tests := []struct {
		name        string
		image, spec []string
		want        []string
	}{
		{"default path", nil, []string{"A=1"}, []string{"A=1", defaultPath}},
		{"override keeps order", []string{"PATH=/bin", "A=1", "B=2"}, []string{"A=x", "C=3"}, []string{"PATH=/bin", "A=x", "B=2", "C=3"}},
		{"spec path", []string{"A=1"}, []string{"PATH=/x"}, []string{"A=1", "PATH=/x"}},
	}
	for _, tc := range tests {
		if got := mergeEnv(tc.image, tc.spec); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q want %q", tc.name, got, tc.want)
		}
	}
}

func TestCgroupPath(t *testing.T) {
	tests := []struct {
		parent, want string
		err          bool
	}{
		{"", "/kedge/c1", false},
		{"/kedge/pods/u1", "/kedge/pods/u1/c1", false},
		{"relative", "", true},
		{"/a/../b", "", true},
	}
	for _, tc := range tests {
		got, err := cgroupPath(ContainerSpec{ID: "c1", CgroupParent: tc.parent}, "/kedge")
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parent %q: got %q, %v", tc.parent, got, err)
		}
	}
}

func TestLibcontainerConfigNamespaces(t *testing.T) {
	tests := []struct {
		name string
		spec ContainerSpec
		want map[configs.NamespaceType]string // type -> path; absent = not in config
	}{
		{"host net and uts, private ipc", ContainerSpec{ID: "c"}, map[configs.NamespaceType]string{
			configs.NEWNS: "", configs.NEWPID: "", configs.NEWIPC: ""}},
		{"host net, own hostname", ContainerSpec{ID: "c", Hostname: "h"}, map[configs.NamespaceType]string{
			configs.NEWNS: "", configs.NEWPID: "", configs.NEWIPC: "", configs.NEWUTS: ""}},
		{"pod namespaces", ContainerSpec{ID: "c", NetNS: "/run/kedge/netns/p", IPCNS: "/run/kedge/ipcns/p", UTSNS: "/run/kedge/utsns/p"},
			map[configs.NamespaceType]string{configs.NEWNS: "", configs.NEWPID: "", configs.NEWNET: "/run/kedge/netns/p",
				configs.NEWIPC: "/run/kedge/ipcns/p", configs.NEWUTS: "/run/kedge/utsns/p"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := libcontainerConfig(tc.spec, "/rootfs", "/kedge/c", hostFeatures{})
			if err != nil {
				t.Fatal(err)
			}
			got := map[configs.NamespaceType]string{}
			for _, ns := range cfg.Namespaces {
				got[ns.Type] = ns.Path
			}
			if len(got) != len(tc.want) {
				t.Fatalf("namespaces %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if p, ok := got[k]; !ok || p != v {
					t.Errorf("namespace %s = %q (present %v), want %q", k, p, ok, v)
				}
			}
		})
	}
}

func TestLibcontainerConfigResources(t *testing.T) {
	spec := ContainerSpec{ID: "c", Resources: Resources{CPUShares: 512, CPUQuota: 50000, CPUPeriod: 100000, MemoryLimit: 64 << 20, PidsLimit: 100},
		Mounts: []Mount{{Source: "/src", Destination: "/dst", ReadOnly: true}}}
	cfg, err := libcontainerConfig(spec, "/rootfs", "/kedge/c", hostFeatures{memsw: true})
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Cgroups.Resources
	if r.CpuShares != 512 || r.CpuQuota != 50000 || r.CpuPeriod != 100000 || r.Memory != 64<<20 || r.MemorySwap != 64<<20 || *r.PidsLimit != 100 {
		t.Errorf("resources %+v", r)
	}
	if cfg.Cgroups.Path != "/kedge/c" || cfg.NoNewPrivileges {
		t.Errorf("cgroup path %q nnp %v", cfg.Cgroups.Path, cfg.NoNewPrivileges)
	}
	last := cfg.Mounts[len(cfg.Mounts)-1]
	if last.Destination != "/dst" || !last.IsBind() || last.Flags&1 == 0 /* MS_RDONLY */ {
		t.Errorf("bind mount %+v", last)
	}
	if len(r.Devices) == 0 || r.Devices[0].Allow || len(cfg.Devices) == 0 {
		t.Error("devices must start with deny-all and list the default devices")
	}
	if !slices.Contains(cfg.Capabilities.Bounding, "CAP_NET_BIND_SERVICE") || slices.Contains(cfg.Capabilities.Bounding, "CAP_SYS_ADMIN") {
		t.Errorf("capabilities %v", cfg.Capabilities.Bounding)
	}
	noSwap, err := libcontainerConfig(spec, "/rootfs", "/kedge/c", hostFeatures{})
	if err != nil {
		t.Fatal(err)
	}
	if noSwap.Cgroups.Resources.MemorySwap != 0 {
		t.Error("swap limit set without swap accounting")
	}
}

package runtime

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/sys/capability"
	"github.com/opencontainers/cgroups"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer/capabilities"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"golang.org/x/sys/unix"

	"kedge.dev/kedge/runtime/seccomp"
)

// defaultPath is set when neither the image nor the spec sets PATH.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultCapabilities is Docker's (and containerd's) default set.
var defaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// maskedPaths and readonlyPaths are the runtime-spec defaults (runc spec,
// containerd's CRI).
var (
	maskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// processArgs applies Kubernetes' rules for command and args over the
// image's Entrypoint and Cmd.
func processArgs(spec ContainerSpec, img Image) ([]string, error) {
	var argv []string
	switch {
	case len(spec.Command) > 0:
		argv = append(slices.Clone(spec.Command), spec.Args...)
	case len(spec.Args) > 0:
		argv = append(slices.Clone(img.Entrypoint), spec.Args...)
	default:
		argv = append(slices.Clone(img.Entrypoint), img.Cmd...)
	}
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("%w: no command given and the image has no entrypoint or cmd", ErrInvalidSpec)
	}
	return argv, nil
}

// mergeEnv overlays spec entries on the image's, keeping the image order
// and appending new keys, and adds a default PATH when none is set.
func mergeEnv(imageEnv, specEnv []string) []string {
	out := slices.Clone(imageEnv)
	index := map[string]int{}
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		index[k] = i
	}
	for _, kv := range specEnv {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	if _, ok := index["PATH"]; !ok {
		out = append(out, defaultPath)
	}
	return out
}

// cgroupPath returns the container's absolute cgroup path.
func cgroupPath(spec ContainerSpec, cgroupRoot string) (string, error) {
	parent := spec.CgroupParent
	if parent == "" {
		parent = cgroupRoot
	}
	if !path.IsAbs(parent) || path.Clean(parent) != parent {
		return "", fmt.Errorf("%w: cgroup parent %q must be a clean absolute path", ErrInvalidSpec, parent)
	}
	return path.Join(parent, spec.ID), nil
}

// hostFeatures are the facts about the host that shape a container's
// configuration.
type hostFeatures struct {
	// memsw: the v1 memory controller accounts swap (then swap is limited
	// to the memory limit, so that a memory limit cannot be escaped by
	// swapping).
	memsw bool
	// v2: cgroups are the unified (v2) hierarchy.
	v2 bool
	// caps are the capabilities this process may hand out (its bounding
	// set), what a privileged container gets; nil means every capability
	// libcontainer knows.
	caps []string
	// minOOMScoreAdj is the lowest oom_score_adj a container can be given:
	// without CAP_SYS_RESOURCE a process cannot go below its own value.
	minOOMScoreAdj int
}

// lowestOOMScoreAdj returns the lowest oom_score_adj this process may give
// its children: -1000 with CAP_SYS_RESOURCE, else its own value.
func lowestOOMScoreAdj(caps []string) int {
	if slices.Contains(caps, "CAP_SYS_RESOURCE") {
		return -1000
	}
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return 0
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return v
}

// boundingCaps returns the capabilities in this process's bounding set: a
// privileged container cannot get more (kedge itself may run with a
// reduced set, e.g. inside another container).
func boundingCaps() ([]string, error) {
	c, err := capability.NewPid2(0)
	if err != nil {
		return nil, err
	}
	if err := c.Load(); err != nil {
		return nil, fmt.Errorf("read own capabilities: %w", err)
	}
	supported, err := capability.ListSupported()
	if err != nil {
		return nil, fmt.Errorf("list supported capabilities: %w", err)
	}
	var out []string
	for _, cp := range supported {
		if c.Get(capability.BOUNDING, cp) {
			out = append(out, "CAP_"+strings.ToUpper(cp.String()))
		}
	}
	return out, nil
}

// cgroupResources converts Resources to libcontainer's cgroup resources.
// On cgroup v2 the CPU shares become a cpu.weight with Kubernetes'
// conversion (libcontainer's own differs).
func cgroupResources(r Resources, host hostFeatures) *cgroups.Resources {
	res := &cgroups.Resources{
		CpuShares: r.CPUShares,
		CpuQuota:  r.CPUQuota,
		CpuPeriod: r.CPUPeriod,
		Memory:    r.MemoryLimit,
	}
	if host.v2 && r.CPUShares != 0 {
		res.CpuWeight = CPUSharesToWeight(r.CPUShares)
		res.CpuShares = 0
	}
	if res.Memory > 0 && (host.memsw || host.v2) {
		// No swap beyond the memory limit (kubelet's NoSwap): on v1 the
		// memsw limit equals the memory limit; on v2 libcontainer turns
		// this into memory.swap.max = 0.
		res.MemorySwap = res.Memory
	}
	if r.PidsLimit > 0 {
		limit := r.PidsLimit
		res.PidsLimit = &limit
	}
	return res
}

// CPUSharesToWeight converts cgroup v1 cpu.shares (2–262144) to a cgroup v2
// cpu.weight (1–10000) as Kubernetes does.
func CPUSharesToWeight(shares uint64) uint64 {
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

// capabilitySet returns the container's capabilities: Docker's default set
// changed by the drops, then the adds; every known capability when
// privileged.
func capabilitySet(sec Security, host hostFeatures) ([]string, error) {
	all := host.caps
	if all == nil {
		all = capabilities.KnownCapabilities()
	}
	if sec.Privileged {
		return all, nil
	}
	norm := func(names []string) ([]string, bool, error) {
		var out []string
		for _, n := range names {
			c := strings.ToUpper(n)
			if c == "ALL" {
				return nil, true, nil
			}
			if !strings.HasPrefix(c, "CAP_") {
				c = "CAP_" + c
			}
			if !slices.Contains(all, c) {
				return nil, false, fmt.Errorf("%w: unknown capability %q", ErrInvalidSpec, n)
			}
			out = append(out, c)
		}
		return out, false, nil
	}
	caps := slices.Clone(defaultCapabilities)
	drop, dropAll, err := norm(sec.CapDrop)
	if err != nil {
		return nil, err
	}
	if dropAll {
		caps = nil
	}
	caps = slices.DeleteFunc(caps, func(c string) bool { return slices.Contains(drop, c) })
	add, addAll, err := norm(sec.CapAdd)
	if err != nil {
		return nil, err
	}
	if addAll {
		return all, nil
	}
	for _, c := range add {
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return caps, nil
}

// seccompConfig returns the container's seccomp filter, nil for none.
// Privileged containers run unconfined, as with containerd.
func seccompConfig(sec Security, caps []string) (*configs.Seccomp, error) {
	switch sec.Seccomp {
	case "", SeccompUnconfined:
		return nil, nil
	case SeccompRuntimeDefault:
		if sec.Privileged {
			return nil, nil
		}
		if !seccomp.Supported() {
			return nil, fmt.Errorf("%w: this kedge binary was built without seccomp support (build tag \"seccomp\" and libseccomp)", ErrSeccompUnsupported)
		}
		cfg, err := seccomp.Config(caps)
		if err != nil {
			return nil, fmt.Errorf("build the RuntimeDefault seccomp profile: %w", err)
		}
		return cfg, nil
	}
	return nil, fmt.Errorf("%w: %q (only RuntimeDefault and Unconfined are)", ErrSeccompUnsupported, sec.Seccomp)
}

// libcontainerConfig builds the libcontainer configuration of a container
// whose root filesystem is mounted at rootfs.
func libcontainerConfig(spec ContainerSpec, rootfs, cgPath string, host hostFeatures) (*configs.Config, error) {
	const defaultMountFlags = unix.MS_NOEXEC | unix.MS_NOSUID | unix.MS_NODEV
	sec := spec.Security
	ns := configs.Namespaces{{Type: configs.NEWNS}, {Type: configs.NEWPID}}
	if spec.NetNS != "" {
		ns = append(ns, configs.Namespace{Type: configs.NEWNET, Path: spec.NetNS})
	}
	ns = append(ns, configs.Namespace{Type: configs.NEWIPC, Path: spec.IPCNS})
	if spec.NetNS != "" || spec.UTSNS != "" || spec.Hostname != "" {
		// A host-network container without a hostname of its own shares
		// the host's UTS namespace, as in Kubernetes.
		ns = append(ns, configs.Namespace{Type: configs.NEWUTS, Path: spec.UTSNS})
	}

	sysFlags := defaultMountFlags | unix.MS_RDONLY
	if sec.Privileged {
		sysFlags = defaultMountFlags
	}
	mounts := []*configs.Mount{
		{Source: "proc", Destination: "/proc", Device: "proc", Flags: defaultMountFlags},
		{Source: "tmpfs", Destination: "/dev", Device: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_STRICTATIME, Data: "mode=755,size=65536k"},
		{Source: "devpts", Destination: "/dev/pts", Device: "devpts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "newinstance,ptmxmode=0666,mode=0620,gid=5"},
		{Source: "shm", Destination: "/dev/shm", Device: "tmpfs", Flags: defaultMountFlags, Data: "mode=1777,size=65536k"},
		{Source: "mqueue", Destination: "/dev/mqueue", Device: "mqueue", Flags: defaultMountFlags},
		{Source: "sysfs", Destination: "/sys", Device: "sysfs", Flags: sysFlags},
	}
	for _, m := range spec.Mounts {
		flags := unix.MS_BIND | unix.MS_REC
		if m.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		mounts = append(mounts, &configs.Mount{
			Source: m.Source, Destination: m.Destination, Device: "bind", Flags: flags,
			PropagationFlags: []int{unix.MS_PRIVATE | unix.MS_REC},
		})
	}

	// Deny every device, then allow the defaults (runc's spec does the
	// same); a privileged container gets every device of the host.
	var rules []*devconfig.Rule
	var devs []*devconfig.Device
	if sec.Privileged {
		rules = []*devconfig.Rule{{Type: devconfig.WildcardDevice, Major: devconfig.Wildcard, Minor: devconfig.Wildcard, Permissions: "rwm", Allow: true}}
		hostDevs, err := hostDevices("/dev")
		if err != nil {
			return nil, fmt.Errorf("list host devices: %w", err)
		}
		for _, d := range hostDevs {
			if d.Path == "/dev/console" || strings.HasPrefix(d.Path, "/dev/pts/") || d.Path == "/dev/ptmx" {
				continue // the container has its own
			}
			devs = append(devs, d)
		}
	} else {
		rules = []*devconfig.Rule{{Type: devconfig.WildcardDevice, Major: devconfig.Wildcard, Minor: devconfig.Wildcard, Permissions: "rwm", Allow: false}}
	}
	for _, d := range specconv.AllowedDevices {
		dev := *d // copies: libcontainer must not write into the shared defaults
		rule := dev.Rule
		rules = append(rules, &rule)
		if dev.Path != "" && !slices.ContainsFunc(devs, func(h *devconfig.Device) bool { return h.Path == dev.Path }) {
			devs = append(devs, &dev)
		}
	}
	res := cgroupResources(spec.Resources, host)
	res.Devices = rules

	caps, err := capabilitySet(sec, host)
	if err != nil {
		return nil, err
	}
	filter, err := seccompConfig(sec, caps)
	if err != nil {
		return nil, err
	}
	masked, readonly := maskedPaths, readonlyPaths
	if sec.Privileged {
		masked, readonly = nil, nil
	}
	var oom *int
	if sec.OOMScoreAdj != nil {
		// Lowering it needs CAP_SYS_RESOURCE, which kedge may lack (e.g.
		// run inside a container): then the closest value allowed.
		v := max(*sec.OOMScoreAdj, host.minOOMScoreAdj)
		oom = &v
	}
	return &configs.Config{
		Rootfs:     rootfs,
		Readonlyfs: sec.ReadOnlyRootfs,
		// Container mounts must not propagate back to the host.
		RootPropagation: unix.MS_SLAVE | unix.MS_REC,
		Hostname:        spec.Hostname,
		Namespaces:      ns,
		Mounts:          mounts,
		Devices:         devs,
		Capabilities: &configs.Capabilities{
			Bounding: caps, Effective: caps, Permitted: slices.Clone(caps),
		},
		MaskPaths:     masked,
		ReadonlyPaths: readonly,
		Cgroups: &cgroups.Cgroup{
			Path:      cgPath,
			Resources: res,
		},
		// Kubernetes leaves no_new_privs off unless allowPrivilegeEscalation is false.
		NoNewPrivileges: sec.NoNewPrivileges,
		OomScoreAdj:     oom,
		Seccomp:         filter,
		Labels:          []string{"kedge=" + spec.ID},
	}, nil
}

// hostDevices lists the character and block devices under dir, skipping
// the directories a container has its own of (pts, shm, mqueue).
func hostDevices(dir string) ([]*devconfig.Device, error) {
	var out []*devconfig.Device
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != dir {
				return nil // a device that went away
			}
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "pts", "shm", "mqueue", ".lxc", ".udev":
				return filepath.SkipDir
			}
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return nil
		}
		var typ devconfig.Type
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			typ = devconfig.CharDevice
		case unix.S_IFBLK:
			typ = devconfig.BlockDevice
		default:
			return nil
		}
		out = append(out, &devconfig.Device{
			Rule: devconfig.Rule{
				Type: typ, Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
				Permissions: "rwm", Allow: true,
			},
			Path: p, FileMode: os.FileMode(st.Mode &^ unix.S_IFMT), Uid: st.Uid, Gid: st.Gid,
		})
		return nil
	})
	return out, err
}

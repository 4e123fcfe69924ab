package runtime

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/opencontainers/cgroups"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"golang.org/x/sys/unix"
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

// libcontainerConfig builds the libcontainer configuration of a container
// whose root filesystem is mounted at rootfs. memsw tells whether the
// memory controller accounts swap (then swap is limited to the memory
// limit, so that a memory limit cannot be escaped by swapping).
func libcontainerConfig(spec ContainerSpec, rootfs, cgPath string, memsw bool) *configs.Config {
	const defaultMountFlags = unix.MS_NOEXEC | unix.MS_NOSUID | unix.MS_NODEV
	ns := configs.Namespaces{{Type: configs.NEWNS}, {Type: configs.NEWPID}}
	if spec.NetNS != "" {
		ns = append(ns, configs.Namespace{Type: configs.NEWNET, Path: spec.NetNS})
	}
	ns = append(ns,
		configs.Namespace{Type: configs.NEWIPC, Path: spec.IPCNS},
		configs.Namespace{Type: configs.NEWUTS, Path: spec.UTSNS},
	)

	mounts := []*configs.Mount{
		{Source: "proc", Destination: "/proc", Device: "proc", Flags: defaultMountFlags},
		{Source: "tmpfs", Destination: "/dev", Device: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_STRICTATIME, Data: "mode=755,size=65536k"},
		{Source: "devpts", Destination: "/dev/pts", Device: "devpts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "newinstance,ptmxmode=0666,mode=0620,gid=5"},
		{Source: "shm", Destination: "/dev/shm", Device: "tmpfs", Flags: defaultMountFlags, Data: "mode=1777,size=65536k"},
		{Source: "mqueue", Destination: "/dev/mqueue", Device: "mqueue", Flags: defaultMountFlags},
		{Source: "sysfs", Destination: "/sys", Device: "sysfs", Flags: defaultMountFlags | unix.MS_RDONLY},
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

	// Deny every device, then allow the defaults (runc's spec does the same).
	rules := []*devconfig.Rule{{Type: devconfig.WildcardDevice, Major: devconfig.Wildcard, Minor: devconfig.Wildcard, Permissions: "rwm", Allow: false}}
	var devs []*devconfig.Device
	for _, d := range specconv.AllowedDevices {
		dev := *d // copies: libcontainer must not write into the shared defaults
		rule := dev.Rule
		rules = append(rules, &rule)
		if dev.Path != "" {
			devs = append(devs, &dev)
		}
	}

	res := &cgroups.Resources{
		Devices:   rules,
		CpuShares: spec.Resources.CPUShares,
		CpuQuota:  spec.Resources.CPUQuota,
		CpuPeriod: spec.Resources.CPUPeriod,
		Memory:    spec.Resources.MemoryLimit,
	}
	if res.Memory > 0 && memsw {
		res.MemorySwap = res.Memory
	}
	if spec.Resources.PidsLimit > 0 {
		limit := spec.Resources.PidsLimit
		res.PidsLimit = &limit
	}

	caps := slices.Clone(defaultCapabilities)
	return &configs.Config{
		Rootfs:     rootfs,
		Readonlyfs: false,
		// Container mounts must not propagate back to the host.
		RootPropagation: unix.MS_SLAVE | unix.MS_REC,
		Hostname:        spec.Hostname,
		Namespaces:      ns,
		Mounts:          mounts,
		Devices:         devs,
		Capabilities: &configs.Capabilities{
			Bounding: caps, Effective: caps, Permitted: caps,
		},
		MaskPaths:     maskedPaths,
		ReadonlyPaths: readonlyPaths,
		Cgroups: &cgroups.Cgroup{
			Path:      cgPath,
			Resources: res,
		},
		// Kubernetes leaves no_new_privs off unless allowPrivilegeEscalation is false.
		NoNewPrivileges: false,
		Labels:          []string{"kedge=" + spec.ID},
	}
}

package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// ErrInvalidConfig is wrapped by Validate's errors.
var ErrInvalidConfig = errors.New("invalid agent config")

// Config configures an Agent. cmd/kedge fills it from the node config.
type Config struct {
	// NodeName is the Node object's name. Required.
	NodeName string
	// DataDir is kedge's data directory; the agent keeps its state in
	// <DataDir>/agent (pod cache, pod directories). Required, absolute.
	DataDir string
	// PodLogDir holds container logs as
	// <PodLogDir>/<ns>_<pod>_<uid>/<container>/<restartCount>.log.
	// Default /var/log/pods.
	PodLogDir string
	// KubeletAddr is the host:port of the kubelet HTTPS endpoint; default
	// ":10250". Empty after defaulting is not allowed; set DisableEndpoint
	// to run without it.
	KubeletAddr string
	// DisableEndpoint turns the kubelet endpoint off (tests).
	DisableEndpoint bool
	// KubeletCertFile and KubeletKeyFile are the endpoint's serving
	// certificate (signed by the cluster CA) and key, PEM files. Required
	// unless DisableEndpoint.
	KubeletCertFile, KubeletKeyFile string
	// KubeletToken is the bearer token the API server presents when it calls
	// the endpoint. Required unless DisableEndpoint.
	KubeletToken string
	// NodeIP is the node's InternalIP and the pods' hostIP. Default: the
	// first global unicast IPv4 address of the host.
	NodeIP string
	// NodeLabels are added to the Node's labels (they override the
	// well-known ones).
	NodeLabels map[string]string
	// ServerNode marks the node with node-role.kubernetes.io/control-plane.
	ServerNode bool
	// Capacity overrides entries of the detected capacity (cpu, memory,
	// ephemeral-storage, pods; pods defaults to 110).
	Capacity corev1.ResourceList
	// SyncPeriod is how often each pod is synced even without a change;
	// default 10 s.
	SyncPeriod time.Duration
	// HeartbeatPeriod is how often the node status is posted; default 10 s.
	HeartbeatPeriod time.Duration
	// RelistPeriod is how often container states are polled to notice
	// exits; default 1 s.
	RelistPeriod time.Duration
	// CgroupRoot is the cgroup path under which pods live, in kubelet's QoS
	// hierarchy (<CgroupRoot>/kubepods/[burstable|besteffort/]pod<uid>);
	// default "/kedge".
	CgroupRoot string
	// PodPidsLimit is the most processes (tasks) one pod may run, set on the
	// pod's cgroup; default 4096, -1 for no limit.
	PodPidsLimit int64
	// ResolvConf is the host resolver file copied into pods; default
	// /etc/resolv.conf.
	ResolvConf string
	// HostsFile is the host's hosts file, used for hostNetwork pods; default
	// /etc/hosts.
	HostsFile string
	// Version is kedge's version, reported as containerRuntimeVersion
	// "kedge://<Version>"; default "dev".
	Version string
	// KubeletVersion is the Kubernetes version the agent reports as
	// kubeletVersion; default "v1.34.2".
	KubeletVersion string
	// Logger is the agent's log; default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every default filled in; NodeName,
// DataDir and the endpoint's files and token remain to be set.
func DefaultConfig() Config {
	return Config{
		PodLogDir:       "/var/log/pods",
		KubeletAddr:     ":10250",
		SyncPeriod:      10 * time.Second,
		HeartbeatPeriod: 10 * time.Second,
		RelistPeriod:    time.Second,
		CgroupRoot:      "/kedge",
		PodPidsLimit:    4096,
		ResolvConf:      "/etc/resolv.conf",
		HostsFile:       "/etc/hosts",
		Version:         "dev",
		KubeletVersion:  "v1.34.2",
		Logger:          slog.Default(),
	}
}

// withDefaults fills the zero fields of cfg from DefaultConfig.
func (cfg Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	set(&cfg.PodLogDir, d.PodLogDir)
	set(&cfg.KubeletAddr, d.KubeletAddr)
	set(&cfg.CgroupRoot, d.CgroupRoot)
	set(&cfg.ResolvConf, d.ResolvConf)
	set(&cfg.HostsFile, d.HostsFile)
	set(&cfg.Version, d.Version)
	set(&cfg.KubeletVersion, d.KubeletVersion)
	setDur(&cfg.SyncPeriod, d.SyncPeriod)
	if cfg.PodPidsLimit == 0 {
		cfg.PodPidsLimit = d.PodPidsLimit
	}
	setDur(&cfg.HeartbeatPeriod, d.HeartbeatPeriod)
	setDur(&cfg.RelistPeriod, d.RelistPeriod)
	if cfg.Logger == nil {
		cfg.Logger = d.Logger
	}
	if cfg.NodeIP == "" {
		cfg.NodeIP = detectNodeIP()
	}
	return cfg
}

// Validate reports whether cfg can work.
func (cfg Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case cfg.NodeName == "":
		return bad("NodeName is empty")
	case !filepath.IsAbs(cfg.DataDir):
		return bad("DataDir %q is not absolute", cfg.DataDir)
	case !filepath.IsAbs(cfg.PodLogDir):
		return bad("PodLogDir %q is not absolute", cfg.PodLogDir)
	case net.ParseIP(cfg.NodeIP) == nil:
		return bad("NodeIP %q is not an IP address", cfg.NodeIP)
	case cfg.SyncPeriod < 0 || cfg.HeartbeatPeriod < 0 || cfg.RelistPeriod < 0:
		return bad("negative period")
	case len(cfg.CgroupRoot) == 0 || cfg.CgroupRoot[0] != '/':
		return bad("CgroupRoot %q is not an absolute cgroup path", cfg.CgroupRoot)
	}
	if !cfg.DisableEndpoint {
		if _, _, err := net.SplitHostPort(cfg.KubeletAddr); err != nil {
			return bad("KubeletAddr %q: %v", cfg.KubeletAddr, err)
		}
		if cfg.KubeletCertFile == "" || cfg.KubeletKeyFile == "" || cfg.KubeletToken == "" {
			return bad("the kubelet endpoint needs KubeletCertFile, KubeletKeyFile and KubeletToken")
		}
	}
	return nil
}

// detectNodeIP returns the first global unicast IPv4 address of the host,
// or 127.0.0.1 when there is none.
func detectNodeIP() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// agentDir is where the agent keeps its state.
func (cfg Config) agentDir() string { return filepath.Join(cfg.DataDir, "agent") }

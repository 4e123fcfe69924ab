package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"kedge.dev/kedge/internal/timerslack"
)

// serverConfig is everything `kedge server` can be told, from flags or from
// the YAML file given with --config (flags win). It is the one place where
// the node's settings are read; wire.go converts it into each component's
// Config.
type serverConfig struct {
	// Listen is the API server's HTTPS address.
	Listen string `json:"listen"`
	// RaftListen is the raft transport address.
	RaftListen string `json:"raftListen"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `json:"logLevel"`
	// DebugAddr is a loopback host:port serving Go's runtime profiles
	// (net/http/pprof) for performance work. Default empty: off.
	DebugAddr string `json:"debugAddr"`
	// DisableAgent runs the server without the node part (runtime, pod
	// network, agent): a control-plane-only server, as k3s' flag of the
	// same name, for a store member on a box that runs no workloads. It
	// registers no Node, so nothing is scheduled there.
	DisableAgent bool `json:"disableAgent"`
	// nodeOptions: this node's own settings, as for `kedge agent`.
	nodeOptions `json:",inline"`
	// storeOptions: compaction, maintenance, --reset-cluster (store.go).
	storeOptions `json:",inline"`
	// clusterOptions: --join, --token, --voters, raft timeouts (cluster.go).
	clusterOptions `json:",inline"`
}

// nodeOptions are the settings of the node part of kedge (runtime, images,
// pod network, agent), the same for `kedge server` and `kedge agent`.
type nodeOptions struct {
	// DataDir holds the store, certificates, tokens, images and agent state.
	DataDir string `json:"dataDir"`
	// RunDir holds runtime state that must not survive a reboot
	// (container state, namespace bind mounts).
	RunDir string `json:"runDir"`
	// AdvertiseAddress is the address other nodes and kubeconfig use; it is
	// also the node's InternalIP. Default: the first non-loopback address.
	AdvertiseAddress string `json:"advertiseAddress"`
	// NodeName defaults to the host name.
	NodeName string `json:"nodeName"`
	// KubeletListen is the agent's HTTPS endpoint (logs, exec).
	KubeletListen string `json:"kubeletListen"`
	// CgroupRoot is the absolute cgroup under which pods are placed.
	CgroupRoot string `json:"cgroupRoot"`
	// PodCIDR is this node's pod address range.
	PodCIDR string `json:"podCIDR"`
	// Bridge is the name of the pod bridge.
	Bridge string `json:"bridge"`
	// Registries is the registries.yaml (k3s' format: mirrors, auth, TLS).
	// Default: <data-dir>/registries.yaml, else /etc/kedge/registries.yaml,
	// else none (anonymous pulls from each registry).
	Registries string `json:"registries"`
	// ImageGCHighThreshold is the percentage of the image store's
	// filesystem in use above which unused images are removed, least
	// recently used first, down to ImageGCLowThreshold. Defaults 85 and 80.
	ImageGCHighThreshold int `json:"imageGCHighThreshold"`
	ImageGCLowThreshold  int `json:"imageGCLowThreshold"`
	// TimerSlack is how late the kernel may wake kedge's threads from a
	// timed sleep (internal/timerslack): 1ms lets the Go runtime's monitor
	// sleep longer between its checks, which cuts the store's CPU per write
	// by about a sixth in a VM; 0 leaves the slack kedge was started with.
	// Containers always get the kernel's default.
	TimerSlack duration `json:"timerSlack"`
	// containerOptions: log rotation, pod pids limit (containers.go).
	containerOptions `json:",inline"`
}

func defaultNodeOptions() nodeOptions {
	host, _ := os.Hostname()
	return nodeOptions{
		DataDir:              "/var/lib/kedge",
		RunDir:               "/run/kedge",
		NodeName:             strings.ToLower(host),
		KubeletListen:        "0.0.0.0:10250",
		CgroupRoot:           "/kedge",
		PodCIDR:              "10.42.0.0/24",
		Bridge:               "kedge0",
		ImageGCHighThreshold: 85,
		ImageGCLowThreshold:  80,
		TimerSlack:           duration{time.Millisecond},
		containerOptions:     defaultContainerOptions(),
	}
}

func defaultServerConfig() serverConfig {
	return serverConfig{
		Listen:         "0.0.0.0:6443",
		RaftListen:     "0.0.0.0:6444",
		LogLevel:       "info",
		nodeOptions:    defaultNodeOptions(),
		storeOptions:   defaultStoreOptions(),
		clusterOptions: defaultClusterOptions(),
	}
}

func (o *nodeOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "directory for the store, certificates, tokens, images and agent state")
	fs.StringVar(&o.RunDir, "run-dir", o.RunDir, "directory for state that must not outlive a reboot")
	fs.StringVar(&o.AdvertiseAddress, "advertise-address", o.AdvertiseAddress, "address clients and nodes use (default: first non-loopback address)")
	fs.StringVar(&o.NodeName, "node-name", o.NodeName, "this node's name")
	fs.StringVar(&o.KubeletListen, "kubelet-listen", o.KubeletListen, "HTTPS address of the node agent (logs, exec)")
	fs.StringVar(&o.CgroupRoot, "cgroup-root", o.CgroupRoot, "absolute cgroup path under which pods run")
	fs.StringVar(&o.PodCIDR, "pod-cidr", o.PodCIDR, "this node's pod address range")
	fs.StringVar(&o.Bridge, "bridge", o.Bridge, "name of the pod network bridge")
	fs.IntVar(&o.ImageGCHighThreshold, "image-gc-high-threshold", o.ImageGCHighThreshold, "percent of the image store's disk in use that starts image garbage collection")
	fs.IntVar(&o.ImageGCLowThreshold, "image-gc-low-threshold", o.ImageGCLowThreshold, "percent of the image store's disk in use that image garbage collection frees down to")
	fs.StringVar(&o.Registries, "registries", o.Registries, "registries.yaml with mirrors, credentials and TLS settings (default <data-dir>/registries.yaml or /etc/kedge/registries.yaml)")
	fs.DurationVar(&o.TimerSlack.Duration, "timer-slack", o.TimerSlack.Duration, "how late kedge's threads may wake from timed sleeps: fewer wake-ups, less CPU (0 = leave as started; containers get the kernel default)")
	o.containerOptions.addFlags(fs)
}

// complete fills derived defaults and checks the values.
func (o *nodeOptions) complete() error {
	var err error
	if o.DataDir, err = filepath.Abs(o.DataDir); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if o.RunDir, err = filepath.Abs(o.RunDir); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	if _, _, err := net.SplitHostPort(o.KubeletListen); err != nil {
		return fmt.Errorf("--kubelet-listen %q: %w", o.KubeletListen, err)
	}
	if _, _, err := net.ParseCIDR(o.PodCIDR); err != nil {
		return fmt.Errorf("--pod-cidr %q: %w", o.PodCIDR, err)
	}
	if err := o.containerOptions.validate(); err != nil {
		return err
	}
	if o.TimerSlack.Duration < 0 || o.TimerSlack.Duration > time.Second {
		return fmt.Errorf("--timer-slack %v: between 0 (leave as started) and 1s", o.TimerSlack.Duration)
	}
	if !strings.HasPrefix(o.CgroupRoot, "/") {
		return fmt.Errorf("--cgroup-root %q must be an absolute cgroup path", o.CgroupRoot)
	}
	if o.NodeName == "" {
		host, _ := os.Hostname()
		o.NodeName = strings.ToLower(host)
	}
	if o.NodeName == "" {
		return errors.New("--node-name is empty and the host name is unknown")
	}
	if o.AdvertiseAddress == "" {
		o.AdvertiseAddress = firstHostIP()
	}
	if net.ParseIP(o.AdvertiseAddress) == nil {
		return fmt.Errorf("--advertise-address %q is not an IP address", o.AdvertiseAddress)
	}
	return nil
}

// applyTimerSlack sets the process's timer slack (TimerSlack 0: leave it).
// A failure (no CAP_SYS_NICE) costs only CPU, so it is logged, not fatal.
func (o nodeOptions) applyTimerSlack(log *slog.Logger) {
	if o.TimerSlack.Duration == 0 {
		return
	}
	if err := timerslack.Set(o.TimerSlack.Duration); err != nil {
		log.Warn("timer slack left as it was", "want", o.TimerSlack.Duration, "err", err)
	}
}

// settings are what startNode is told.
func (o nodeOptions) settings(serverNode bool, kubeletToken string) nodeSettings {
	return nodeSettings{
		NodeName: o.NodeName, DataDir: o.DataDir, RunDir: o.RunDir, CgroupRoot: o.CgroupRoot,
		KubeletListen: o.KubeletListen, AdvertiseAddress: o.AdvertiseAddress,
		PodCIDR: o.PodCIDR, Bridge: o.Bridge, Registries: o.Registries,
		ImageGCHigh: o.ImageGCHighThreshold, ImageGCLow: o.ImageGCLowThreshold,
		Containers: o.containerOptions, ServerNode: serverNode, KubeletToken: kubeletToken, Version: version,
	}
}

// parseServerFlags reads --config first (so the file sets the defaults),
// then the remaining flags on top.
func parseServerFlags(args []string, stderr io.Writer) (serverConfig, error) {
	cfg := defaultServerConfig()
	if path := findFlag(args, "config"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config file: %w", err)
		}
		if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
			return cfg, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	fs := flag.NewFlagSet("kedge server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", "", "YAML file with any of the settings below (flags win)")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "HTTPS address of the API server")
	fs.StringVar(&cfg.RaftListen, "raft-listen", cfg.RaftListen, "raft transport address (mutual TLS with the cluster CA; advertised with --advertise-address)")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", cfg.DebugAddr, "loopback host:port serving Go runtime profiles at /debug/pprof/ (default off)")
	fs.BoolVar(&cfg.DisableAgent, "disable-agent", cfg.DisableAgent, "run no pods here: store and API server only (no runtime, pod network or Node)")
	cfg.nodeOptions.addFlags(fs)
	cfg.storeOptions.addFlags(fs)
	cfg.clusterOptions.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, errUsage
		}
		return cfg, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kedge server: unexpected argument %q\n", fs.Arg(0))
		return cfg, errUsage
	}
	return cfg, cfg.complete()
}

// findFlag returns the value of -name/--name in args without parsing the rest.
func findFlag(args []string, name string) string {
	for i, a := range args {
		for _, p := range []string{"-" + name, "--" + name} {
			if a == p && i+1 < len(args) {
				return args[i+1]
			}
			if strings.HasPrefix(a, p+"=") {
				return strings.TrimPrefix(a, p+"=")
			}
		}
	}
	return ""
}

// complete fills derived defaults and checks the values.
func (c *serverConfig) complete() error {
	for name, addr := range map[string]string{"listen": c.Listen, "raft-listen": c.RaftListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("--%s %q: %w", name, addr, err)
		}
	}
	if err := c.nodeOptions.complete(); err != nil {
		return err
	}
	if _, err := c.level(); err != nil {
		return err
	}
	if err := validateDebugAddr(c.DebugAddr); err != nil {
		return err
	}
	return c.clusterOptions.validate()
}

func (c *serverConfig) level() (slog.Level, error) { return parseLevel(c.LogLevel) }

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// firstHostIP picks the first global unicast IPv4 address, falling back to
// loopback on a box without network (it must still run its pods).
func firstHostIP() string {
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || strings.HasPrefix(ifc.Name, "kedge") || strings.HasPrefix(ifc.Name, "veth") {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// durations used by the server wiring.
const (
	shutdownGrace = 10 * time.Second
)

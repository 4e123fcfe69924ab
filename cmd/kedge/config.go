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
)

// serverConfig is everything `kedge server` can be told, from flags or from
// the YAML file given with --config (flags win). It is the one place where
// the node's settings are read; wire.go converts it into each component's
// Config.
type serverConfig struct {
	// DataDir holds the store, certificates, tokens, images and agent state.
	DataDir string `json:"dataDir"`
	// RunDir holds runtime state that must not survive a reboot
	// (container state, namespace bind mounts).
	RunDir string `json:"runDir"`
	// Listen is the API server's HTTPS address.
	Listen string `json:"listen"`
	// AdvertiseAddress is the address other nodes and kubeconfig use; it is
	// also the node's InternalIP. Default: the first non-loopback address.
	AdvertiseAddress string `json:"advertiseAddress"`
	// NodeName defaults to the host name.
	NodeName string `json:"nodeName"`
	// KubeletListen is the agent's HTTPS endpoint (logs, later exec).
	KubeletListen string `json:"kubeletListen"`
	// RaftListen is the raft transport address.
	RaftListen string `json:"raftListen"`
	// CgroupRoot is the absolute cgroup under which pods are placed.
	CgroupRoot string `json:"cgroupRoot"`
	// PodCIDR is this node's pod address range.
	PodCIDR string `json:"podCIDR"`
	// Bridge is the name of the pod bridge.
	Bridge string `json:"bridge"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `json:"logLevel"`
	// Registries is the registries.yaml (k3s' format: mirrors, auth, TLS).
	// Default: <data-dir>/registries.yaml, else /etc/kedge/registries.yaml,
	// else none (anonymous pulls from each registry).
	Registries string `json:"registries"`
	// ImageGCHighThreshold is the percentage of the image store's
	// filesystem in use above which unused images are removed, least
	// recently used first, down to ImageGCLowThreshold. Defaults 85 and 80.
	ImageGCHighThreshold int `json:"imageGCHighThreshold"`
	ImageGCLowThreshold  int `json:"imageGCLowThreshold"`
	// DebugAddr is a loopback host:port serving Go's runtime profiles
	// (net/http/pprof) for performance work. Default empty: off.
	DebugAddr string `json:"debugAddr"`
	// storeOptions: compaction, maintenance, --reset-cluster (store.go).
	storeOptions `json:",inline"`
	// clusterOptions: --join, --token, --voters, raft timeouts (cluster.go).
	clusterOptions `json:",inline"`
	// containerOptions: log rotation, pod pids limit (containers.go).
	containerOptions `json:",inline"`
}

func defaultServerConfig() serverConfig {
	host, _ := os.Hostname()
	return serverConfig{
		DataDir:              "/var/lib/kedge",
		RunDir:               "/run/kedge",
		Listen:               "0.0.0.0:6443",
		NodeName:             strings.ToLower(host),
		KubeletListen:        "0.0.0.0:10250",
		RaftListen:           "0.0.0.0:6444",
		CgroupRoot:           "/kedge",
		PodCIDR:              "10.42.0.0/24",
		Bridge:               "kedge0",
		LogLevel:             "info",
		ImageGCHighThreshold: 85,
		ImageGCLowThreshold:  80,
		storeOptions:         defaultStoreOptions(),
		clusterOptions:       defaultClusterOptions(),
		containerOptions:     defaultContainerOptions(),
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
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for the store, certificates, tokens, images and agent state")
	fs.StringVar(&cfg.RunDir, "run-dir", cfg.RunDir, "directory for state that must not outlive a reboot")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "HTTPS address of the API server")
	fs.StringVar(&cfg.AdvertiseAddress, "advertise-address", cfg.AdvertiseAddress, "address clients and nodes use (default: first non-loopback address)")
	fs.StringVar(&cfg.NodeName, "node-name", cfg.NodeName, "this node's name")
	fs.StringVar(&cfg.KubeletListen, "kubelet-listen", cfg.KubeletListen, "HTTPS address of the node agent (logs, exec)")
	fs.StringVar(&cfg.RaftListen, "raft-listen", cfg.RaftListen, "raft transport address (mutual TLS with the cluster CA; advertised with --advertise-address)")
	fs.StringVar(&cfg.CgroupRoot, "cgroup-root", cfg.CgroupRoot, "absolute cgroup path under which pods run")
	fs.StringVar(&cfg.PodCIDR, "pod-cidr", cfg.PodCIDR, "this node's pod address range")
	fs.StringVar(&cfg.Bridge, "bridge", cfg.Bridge, "name of the pod network bridge")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	fs.IntVar(&cfg.ImageGCHighThreshold, "image-gc-high-threshold", cfg.ImageGCHighThreshold, "percent of the image store's disk in use that starts image garbage collection")
	fs.IntVar(&cfg.ImageGCLowThreshold, "image-gc-low-threshold", cfg.ImageGCLowThreshold, "percent of the image store's disk in use that image garbage collection frees down to")
	fs.StringVar(&cfg.Registries, "registries", cfg.Registries, "registries.yaml with mirrors, credentials and TLS settings (default <data-dir>/registries.yaml or /etc/kedge/registries.yaml)")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", cfg.DebugAddr, "loopback host:port serving Go runtime profiles at /debug/pprof/ (default off)")
	cfg.storeOptions.addFlags(fs)
	cfg.clusterOptions.addFlags(fs)
	cfg.containerOptions.addFlags(fs)
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
	var err error
	if c.DataDir, err = filepath.Abs(c.DataDir); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if c.RunDir, err = filepath.Abs(c.RunDir); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	for name, addr := range map[string]string{"listen": c.Listen, "kubelet-listen": c.KubeletListen, "raft-listen": c.RaftListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("--%s %q: %w", name, addr, err)
		}
	}
	if _, _, err := net.ParseCIDR(c.PodCIDR); err != nil {
		return fmt.Errorf("--pod-cidr %q: %w", c.PodCIDR, err)
	}
	if err := c.containerOptions.validate(); err != nil {
		return err
	}
	if !strings.HasPrefix(c.CgroupRoot, "/") {
		return fmt.Errorf("--cgroup-root %q must be an absolute cgroup path", c.CgroupRoot)
	}
	if c.NodeName == "" {
		host, _ := os.Hostname()
		c.NodeName = strings.ToLower(host)
	}
	if c.NodeName == "" {
		return errors.New("--node-name is empty and the host name is unknown")
	}
	if c.AdvertiseAddress == "" {
		c.AdvertiseAddress = firstHostIP()
	}
	if net.ParseIP(c.AdvertiseAddress) == nil {
		return fmt.Errorf("--advertise-address %q is not an IP address", c.AdvertiseAddress)
	}
	if _, err := c.level(); err != nil {
		return err
	}
	if err := validateDebugAddr(c.DebugAddr); err != nil {
		return err
	}
	if err := c.clusterOptions.validate(); err != nil {
		return err
	}
	return nil
}

func (c *serverConfig) level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return l, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
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

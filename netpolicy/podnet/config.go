package podnet

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
)

// Defaults used by DefaultConfig.
const (
	DefaultBridgeName = "kedge0"
	DefaultPodCIDR    = "10.42.0.0/24"
	DefaultStateDir   = "/var/lib/kedge/podnet"
	DefaultMTU        = 1500
)

// Config configures a Network.
type Config struct {
	// BridgeName is the Linux bridge the pods are attached to; at most 15 bytes.
	// Default: DefaultBridgeName.
	BridgeName string
	// PodCIDR is this node's IPv4 pod range, without host bits set, prefix /8 to /30.
	// The first host address is the gateway on the bridge. Default: DefaultPodCIDR.
	PodCIDR string
	// StateDir holds the IPAM file (ipam.json); must be absolute and survive restarts.
	// Default: DefaultStateDir.
	StateDir string
	// MTU of the bridge and of both ends of every veth, in bytes, 576 to 65535.
	// Default: DefaultMTU.
	MTU int
	// EnableIPForward sets net.ipv4.ip_forward=1 in Setup, for routing pod traffic off
	// the node. Default: false (pods on the same bridge need no forwarding).
	EnableIPForward bool
	// Logger receives debug and warning messages. Default (nil): logs are discarded.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration used on a node.
func DefaultConfig() Config {
	return Config{
		BridgeName: DefaultBridgeName,
		PodCIDR:    DefaultPodCIDR,
		StateDir:   DefaultStateDir,
		MTU:        DefaultMTU,
	}
}

// ErrInvalidConfig is wrapped by Validate's errors.
var ErrInvalidConfig = errors.New("invalid pod network config")

// Validate reports whether the configuration can be used.
func (c Config) Validate() error {
	if err := validIfName(c.BridgeName); err != nil {
		return fmt.Errorf("%w: BridgeName: %v", ErrInvalidConfig, err)
	}
	if _, err := parsePodCIDR(c.PodCIDR); err != nil {
		return fmt.Errorf("%w: PodCIDR: %v", ErrInvalidConfig, err)
	}
	if c.StateDir == "" || !filepath.IsAbs(c.StateDir) {
		return fmt.Errorf("%w: StateDir %q is not an absolute path", ErrInvalidConfig, c.StateDir)
	}
	if c.MTU < 576 || c.MTU > 65535 {
		return fmt.Errorf("%w: MTU %d is outside 576..65535", ErrInvalidConfig, c.MTU)
	}
	return nil
}

// parsePodCIDR accepts an IPv4 network address with a prefix that leaves room for the
// gateway and at least one pod.
func parsePodCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%s is not IPv4 (only IPv4 pod networks are supported)", s)
	}
	if p.Bits() < 8 || p.Bits() > 30 {
		return netip.Prefix{}, fmt.Errorf("%s: prefix length must be 8..30", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set; did you mean %s?", s, p.Masked())
	}
	return p, nil
}

// validIfName checks a Linux interface name (IFNAMSIZ-1 bytes, no '/', no whitespace).
func validIfName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%q is not an interface name", name)
	case len(name) > 15:
		return fmt.Errorf("%q is longer than 15 bytes", name)
	case strings.ContainsAny(name, "/: \t\n"):
		return fmt.Errorf("%q contains '/', ':' or whitespace", name)
	}
	return nil
}

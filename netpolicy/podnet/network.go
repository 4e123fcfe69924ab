package podnet

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sync"

	"github.com/vishvananda/netlink"
)

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("pod network closed")

// Network is the pod network of one node: one bridge, one veth pair per pod, and the IPAM
// that gives each pod its address.
//
// All methods are safe for concurrent use. They are serialised by one mutex: each is a
// handful of netlink calls, and serialising keeps the IPAM file and the links in step.
// Network owns a netlink socket in the agent's namespace (released by Close); it does not
// own the bridge or the pods' interfaces, which outlive it.
type Network struct {
	cfg     Config
	cidr    netip.Prefix
	gateway netip.Addr
	log     *slog.Logger

	mu     sync.Mutex
	nl     *netlink.Handle // nil after Close
	ipam   *ipam
	closed bool
}

// New validates cfg, loads the IPAM state from cfg.StateDir and opens a netlink socket.
// It changes nothing on the host; Setup does.
func New(cfg Config) (*Network, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cidr, _ := parsePodCIDR(cfg.PodCIDR) // validated above
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "podnet", "bridge", cfg.BridgeName)
	a, err := loadIPAM(filepath.Join(cfg.StateDir, ipamFileName), cidr, log)
	if err != nil {
		return nil, fmt.Errorf("new pod network: %w", err)
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("new pod network: open netlink socket: %w", err)
	}
	return &Network{cfg: cfg, cidr: cidr, gateway: gatewayOf(cidr), log: log, nl: h, ipam: a}, nil
}

// Gateway returns the bridge's address, which pods use as their default route.
func (n *Network) Gateway() net.IP { return n.gateway.AsSlice() }

// Close releases the netlink socket. It leaves the bridge and every pod interface in place.
// Calling it again does nothing.
func (n *Network) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	n.nl.Close()
	n.nl = nil
	return nil
}

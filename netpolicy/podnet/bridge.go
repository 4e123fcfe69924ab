package podnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNotBridge is returned when Config.BridgeName names an interface that is not a bridge.
var ErrNotBridge = errors.New("interface is not a bridge")

// ErrNoBridge is returned by Attach when the bridge does not exist: Setup was not called,
// or the bridge was deleted behind the agent's back.
var ErrNoBridge = errors.New("pod bridge missing")

// ipForwardPath is the sysctl Setup writes when Config.EnableIPForward is set.
const ipForwardPath = "/proc/sys/net/ipv4/ip_forward"

// Setup creates the bridge, or adopts an existing one, and brings it to the configured
// state: MTU, fixed MAC, gateway address, up. Addresses on the bridge other than the
// gateway's are left alone (an adopted bridge may carry the host's own address). It is
// idempotent and safe to call on every agent start.
func (n *Network) Setup(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("set up pod network: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	if err := n.ensureBridge(); err != nil {
		return fmt.Errorf("set up bridge %s: %w", n.cfg.BridgeName, err)
	}
	if n.cfg.EnableIPForward {
		if err := enableIPForward(); err != nil {
			return fmt.Errorf("set up pod network: %w", err)
		}
	}
	return nil
}

func (n *Network) ensureBridge() error {
	name := n.cfg.BridgeName
	mac := macFor(n.gateway)
	link, err := n.nl.LinkByName(name)
	if _, missing := errors.AsType[netlink.LinkNotFoundError](err); missing {
		la := netlink.NewLinkAttrs()
		la.Name = name
		la.MTU = n.cfg.MTU
		la.HardwareAddr = mac
		if err := n.nl.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create: %w", err)
		}
		n.log.Info("bridge created", "mtu", n.cfg.MTU, "gateway", n.gateway.String())
		link, err = n.nl.LinkByName(name)
	}
	if err != nil {
		return fmt.Errorf("look up: %w", err)
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return fmt.Errorf("%w: %s is a %s (Try: choose another bridge name)", ErrNotBridge, name, link.Type())
	}
	if link.Attrs().MTU != n.cfg.MTU {
		if err := n.nl.LinkSetMTU(link, n.cfg.MTU); err != nil {
			return fmt.Errorf("set MTU %d: %w", n.cfg.MTU, err)
		}
	}
	if !bytes.Equal(link.Attrs().HardwareAddr, mac) {
		if err := n.nl.LinkSetHardwareAddr(link, mac); err != nil {
			return fmt.Errorf("set MAC %s: %w", mac, err)
		}
	}
	gw := &netlink.Addr{IPNet: &net.IPNet{IP: n.gateway.AsSlice(), Mask: net.CIDRMask(n.cidr.Bits(), 32)}}
	addrs, err := n.nl.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	if !hasAddr(addrs, gw.IPNet) {
		if err := n.nl.AddrAdd(link, gw); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add gateway address %s: %w", gw.IPNet, err)
		}
	}
	if err := n.nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	return nil
}

// Teardown deletes the bridge. Pods attached to it lose connectivity but keep their
// interfaces and addresses; Detach them first to release those. A missing bridge is fine.
func (n *Network) Teardown(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tear down pod network: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	link, err := n.nl.LinkByName(n.cfg.BridgeName)
	if _, missing := errors.AsType[netlink.LinkNotFoundError](err); missing {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tear down bridge %s: %w", n.cfg.BridgeName, err)
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return fmt.Errorf("tear down %s: %w", n.cfg.BridgeName, ErrNotBridge)
	}
	if err := n.nl.LinkDel(link); err != nil {
		return fmt.Errorf("tear down bridge %s: %w", n.cfg.BridgeName, err)
	}
	n.log.Info("bridge deleted")
	return nil
}

// hasAddr reports whether want (address and prefix length) is among addrs.
func hasAddr(addrs []netlink.Addr, want *net.IPNet) bool {
	wantOnes, _ := want.Mask.Size()
	for _, a := range addrs {
		ones, _ := a.Mask.Size()
		if a.IP.Equal(want.IP) && ones == wantOnes {
			return true
		}
	}
	return false
}

// enableIPForward turns on IPv4 forwarding for the whole host (the agent's namespace).
func enableIPForward() error {
	cur, err := os.ReadFile(ipForwardPath)
	if err != nil {
		return fmt.Errorf("read %s: %w", ipForwardPath, err)
	}
	if strings.TrimSpace(string(cur)) == "1" {
		return nil
	}
	if err := os.WriteFile(ipForwardPath, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enable IP forwarding: %w", err)
	}
	return nil
}

package podnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Attach gives the pod whose network namespace is netnsPath an address and connects it to
// the bridge: a veth pair, host side on the bridge with hairpin on, pod side eth0 with the
// address, lo up, and a default route via the gateway. It is idempotent: the same pod gets
// the same address, and a pair that is already in place is kept (and its settings
// re-applied). A pair whose pod side is elsewhere (a new namespace for the same pod) is
// replaced. If Attach fails the address stays allocated for the retry; Detach releases it.
func (n *Network) Attach(ctx context.Context, podUID, netnsPath string) (net.IP, error) {
	if podUID == "" || netnsPath == "" {
		return nil, fmt.Errorf("attach pod %q to %q: pod UID and netns path are required", podUID, netnsPath)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("attach pod %s: %w", podUID, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}

	bridge, err := n.nl.LinkByName(n.cfg.BridgeName)
	if _, missing := errors.AsType[netlink.LinkNotFoundError](err); missing {
		return nil, fmt.Errorf("attach pod %s: %w: %s (Try: call Setup first)", podUID, ErrNoBridge, n.cfg.BridgeName)
	}
	if err != nil {
		return nil, fmt.Errorf("attach pod %s: look up bridge: %w", podUID, err)
	}
	ip, err := n.ipam.allocate(podUID)
	if err != nil {
		return nil, fmt.Errorf("attach pod %s: %w", podUID, err)
	}

	ns, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return nil, fmt.Errorf("attach pod %s: open netns %s: %w", podUID, netnsPath, err)
	}
	defer ns.Close()
	podNL, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("attach pod %s: netlink in %s: %w", podUID, netnsPath, err)
	}
	defer podNL.Close()

	hostName := hostVethName(podUID)
	host, pod, err := n.existingPair(podNL, hostName)
	if err != nil {
		return nil, fmt.Errorf("attach pod %s: %w", podUID, err)
	}
	if host == nil {
		if host, pod, err = n.createPair(podNL, ns, hostName, bridge, ip); err != nil {
			return nil, fmt.Errorf("attach pod %s: %w", podUID, err)
		}
		n.log.Debug("veth created", "pod_uid", podUID, "host_if", hostName, "ip", ip.String())
	}
	if err := n.configureHost(host, bridge); err != nil {
		return nil, fmt.Errorf("attach pod %s: host side %s: %w", podUID, hostName, err)
	}
	if err := n.configurePod(podNL, pod, ip); err != nil {
		return nil, fmt.Errorf("attach pod %s: in %s: %w", podUID, netnsPath, err)
	}
	return ip.AsSlice(), nil
}

// existingPair returns the pod's veth ends if the host side exists and its peer is eth0 in
// the pod's namespace. Leftovers that do not form that pair are deleted, so the caller can
// create a fresh one: a host side whose peer is elsewhere (the pod got a new namespace),
// and an eth0 in the pod namespace that is not our peer (left by an interrupted Attach).
func (n *Network) existingPair(podNL *netlink.Handle, hostName string) (host, pod netlink.Link, err error) {
	host, err = n.nl.LinkByName(hostName)
	if _, missing := errors.AsType[netlink.LinkNotFoundError](err); missing {
		host, err = nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("look up %s: %w", hostName, err)
	}
	pod, err = podNL.LinkByName(podIfName)
	if _, missing := errors.AsType[netlink.LinkNotFoundError](err); missing {
		pod, err = nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("look up %s in pod: %w", podIfName, err)
	}
	// For a veth, ParentIndex is the peer's ifindex (in the peer's namespace).
	if host != nil && pod != nil && pod.Type() == "veth" && host.Type() == "veth" &&
		host.Attrs().ParentIndex == pod.Attrs().Index && pod.Attrs().ParentIndex == host.Attrs().Index {
		return host, pod, nil
	}
	if host != nil {
		if err := n.nl.LinkDel(host); err != nil && !errors.Is(err, unix.ENODEV) {
			return nil, nil, fmt.Errorf("delete stale %s: %w", hostName, err)
		}
	}
	if pod != nil {
		// Deleting the host side may already have taken it along.
		if err := podNL.LinkDel(pod); err != nil && !errors.Is(err, unix.ENODEV) {
			return nil, nil, fmt.Errorf("delete stale %s in pod: %w", podIfName, err)
		}
	}
	return nil, nil, nil
}

// createPair makes the veth pair with the pod end created directly inside the pod's
// namespace as eth0, so no temporary name ever appears on the host.
func (n *Network) createPair(podNL *netlink.Handle, ns netns.NsHandle, hostName string, bridge netlink.Link, ip netip.Addr) (host, pod netlink.Link, err error) {
	la := netlink.NewLinkAttrs()
	la.Name = hostName
	la.MTU = n.cfg.MTU
	la.MasterIndex = bridge.Attrs().Index
	veth := &netlink.Veth{
		LinkAttrs:        la,
		PeerName:         podIfName,
		PeerHardwareAddr: macFor(ip),
		PeerNamespace:    netlink.NsFd(int(ns)),
		PeerTxQLen:       -1,
		PeerMTU:          uint32(n.cfg.MTU),
	}
	if err := n.nl.LinkAdd(veth); err != nil {
		return nil, nil, fmt.Errorf("create veth %s/%s: %w", hostName, podIfName, err)
	}
	if host, err = n.nl.LinkByName(hostName); err != nil {
		return nil, nil, fmt.Errorf("look up new %s: %w", hostName, err)
	}
	if pod, err = podNL.LinkByName(podIfName); err != nil {
		return nil, nil, fmt.Errorf("look up new %s in pod: %w", podIfName, err)
	}
	return host, pod, nil
}

// configureHost (re)applies the host side's settings: bridge port, MTU, hairpin, up.
func (n *Network) configureHost(host, bridge netlink.Link) error {
	if host.Attrs().MasterIndex != bridge.Attrs().Index {
		if err := n.nl.LinkSetMaster(host, bridge); err != nil {
			return fmt.Errorf("attach to bridge: %w", err)
		}
	}
	if host.Attrs().MTU != n.cfg.MTU {
		if err := n.nl.LinkSetMTU(host, n.cfg.MTU); err != nil {
			return fmt.Errorf("set MTU: %w", err)
		}
	}
	if err := n.nl.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("set hairpin: %w", err)
	}
	if err := n.nl.LinkSetUp(host); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	return nil
}

// configurePod (re)applies the pod side's settings: lo up, MAC, MTU, address, up, default
// route via the gateway.
func (n *Network) configurePod(podNL *netlink.Handle, pod netlink.Link, ip netip.Addr) error {
	lo, err := podNL.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("look up lo: %w", err)
	}
	if err := podNL.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	if mac := macFor(ip); pod.Attrs().HardwareAddr.String() != mac.String() {
		if err := podNL.LinkSetHardwareAddr(pod, mac); err != nil {
			return fmt.Errorf("set %s MAC: %w", podIfName, err)
		}
	}
	if pod.Attrs().MTU != n.cfg.MTU {
		if err := podNL.LinkSetMTU(pod, n.cfg.MTU); err != nil {
			return fmt.Errorf("set %s MTU: %w", podIfName, err)
		}
	}
	mask := net.CIDRMask(n.cidr.Bits(), 32)
	want := &net.IPNet{IP: ip.AsSlice(), Mask: mask}
	addrs, err := podNL.AddrList(pod, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list %s addresses: %w", podIfName, err)
	}
	for _, a := range addrs {
		// Only one address belongs here; an old one would answer ARP for a stranger's IP.
		if ones, _ := a.Mask.Size(); !a.IP.Equal(want.IP) || ones != n.cidr.Bits() {
			if err := podNL.AddrDel(pod, &a); err != nil {
				return fmt.Errorf("remove stale address %s: %w", a.IPNet, err)
			}
		}
	}
	if !hasAddr(addrs, want) {
		if err := podNL.AddrAdd(pod, &netlink.Addr{IPNet: want}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add address %s: %w", want, err)
		}
	}
	if err := podNL.LinkSetUp(pod); err != nil {
		return fmt.Errorf("set %s up: %w", podIfName, err)
	}
	route := &netlink.Route{
		LinkIndex: pod.Attrs().Index,
		Dst:       &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)},
		Gw:        n.gateway.AsSlice(),
	}
	if err := podNL.RouteReplace(route); err != nil {
		return fmt.Errorf("set default route via %s: %w", n.gateway, err)
	}
	return nil
}

// Detach removes the pod's veth pair and releases its address. It works without the
// namespace (netnsPath may be "" or already removed): deleting the host side deletes the
// pair. Detaching a pod that is not attached is not an error.
func (n *Network) Detach(ctx context.Context, podUID, netnsPath string) error {
	if podUID == "" {
		return fmt.Errorf("detach: pod UID is required")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("detach pod %s: %w", podUID, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}

	hostName := hostVethName(podUID)
	host, err := n.nl.LinkByName(hostName)
	switch _, missing := errors.AsType[netlink.LinkNotFoundError](err); {
	case missing:
	case err != nil:
		return fmt.Errorf("detach pod %s: look up %s: %w", podUID, hostName, err)
	default:
		if err := n.nl.LinkDel(host); err != nil && !errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("detach pod %s: delete %s: %w", podUID, hostName, err)
		}
		n.log.Debug("veth deleted", "pod_uid", podUID, "host_if", hostName)
	}
	if netnsPath != "" {
		if err := deletePodSide(netnsPath); err != nil {
			return fmt.Errorf("detach pod %s: %w", podUID, err)
		}
	}
	if err := n.ipam.release(podUID); err != nil {
		return fmt.Errorf("detach pod %s: %w", podUID, err)
	}
	return nil
}

// deletePodSide removes a veth eth0 left in the pod's namespace without its host side
// (an Attach interrupted between create and bookkeeping cannot leave one today, but a
// hand-made or older pair could). A namespace that is gone is fine, and so is a path that
// is no namespace (a pin file whose mount was lost): there is nothing in it to delete.
func deletePodSide(netnsPath string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(netnsPath, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("statfs netns %s: %w", netnsPath, err)
	}
	if st.Type != unix.NSFS_MAGIC {
		return nil
	}
	ns, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", netnsPath, err)
	}
	defer ns.Close()
	podNL, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", netnsPath, err)
	}
	defer podNL.Close()
	pod, err := podNL.LinkByName(podIfName)
	if _, missing := errors.AsType[netlink.LinkNotFoundError](err); missing {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up %s in %s: %w", podIfName, netnsPath, err)
	}
	if pod.Type() != "veth" {
		return nil
	}
	if err := podNL.LinkDel(pod); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s in %s: %w", podIfName, netnsPath, err)
	}
	return nil
}

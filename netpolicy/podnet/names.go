package podnet

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/netip"
)

// podIfName is the name of the pod side of the veth pair inside the pod's namespace.
const podIfName = "eth0"

// hostVethName derives the host side's name from the pod UID: "kv" and 11 hex digits of
// its SHA-256 (13 bytes, under IFNAMSIZ). Being a pure function of the UID, it lets Detach
// find the interface with no state, and 44 bits keep collisions out of reach on one node.
func hostVethName(podUID string) string {
	sum := sha256.Sum256([]byte(podUID))
	return "kv" + hex.EncodeToString(sum[:])[:11]
}

// macFor derives a locally administered unicast MAC from an IPv4 address (0a:58:a.b.c.d,
// the convention other Kubernetes networks use too), so an address always maps to the same
// MAC and peers' ARP entries survive a pod's re-attachment.
func macFor(ip netip.Addr) net.HardwareAddr {
	b := ip.As4()
	return net.HardwareAddr{0x0a, 0x58, b[0], b[1], b[2], b[3]}
}

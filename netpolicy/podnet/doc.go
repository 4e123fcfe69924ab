// Package podnet wires pods of one node to a Linux bridge.
//
// Layout on the node (defaults in brackets):
//
//	bridge [kedge0]  address = gateway, the first host address of the pod CIDR [10.42.0.1/24]
//	  └─ kv<hash>    host side of a pod's veth pair, a port of the bridge, hairpin on
//	       └─ eth0   the pod side, inside the pod's network namespace, with the pod's address,
//	                 a default route via the gateway; lo is up beside it
//
// Names and hardware addresses are derived from the pod UID and the pod IP, so the same pod
// always gets the same host interface name (Detach finds it without any state, even after
// the namespace is gone) and the same MAC for the same IP (neighbours' ARP entries stay valid
// when a pod is re-attached). The bridge gets a fixed MAC too: a bridge without one takes the
// lowest MAC of its ports and changes it as pods come and go, which stalls traffic to the
// gateway until ARP caches expire.
//
// Hairpin mode is set on every bridge port so that a packet a pod sends to a Service address
// which is rewritten back to the same pod can leave and re-enter the same port.
//
// # Caller's duties
//
//   - Call Setup once before Attach (it is idempotent; the agent calls it on every start).
//   - Attach and Detach are idempotent and keyed by pod UID; call Detach when a pod is gone,
//     even if its namespace was already removed, to release its address.
//   - Close does not touch the bridge or any pod: pods outlive the agent. Teardown removes
//     the bridge (for uninstall and tests).
//
// IP forwarding is enabled only when Config.EnableIPForward is set: traffic between pods on
// one bridge is switched, not routed, and needs no forwarding.
package podnet

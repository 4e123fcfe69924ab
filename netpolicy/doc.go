// Package netpolicy is the room for a node's pod networking.
//
// Today it holds one part:
//
//   - podnet: the pod network of one node, in-process through netlink. A Linux bridge
//     carries the gateway address of the node's pod CIDR; each pod gets a veth pair whose
//     pod side is eth0 inside the pod's network namespace (made by runtime/sandbox), with an
//     address from a small IPAM persisted on disk so allocations survive agent restarts.
//
// Routes between nodes, Services (ClusterIP, NodePort, headless, ExternalName) and
// NetworkPolicy in nftables, and cluster DNS are not implemented yet; they come in a later
// issue and will live in sibling packages of podnet. Until then pods reach each other on the
// same node only, and nothing here filters or rewrites traffic.
package netpolicy

// Package agent is kedge's node agent: it does the kubelet's job on a node.
//
// It registers the node and keeps its status fresh, watches the pods bound
// to the node (keeping an offline copy in a local SQLite file), runs each pod
// through the runtime, sandbox and pod network it is given, reports pod
// status and events, deletes pods once their containers are gone, and serves
// the kubelet HTTPS endpoint for container logs.
//
// # Ownership and goroutines
//
// Run starts and owns: the node heartbeat, the pod source (list + watch,
// relisting after a broken watch or 410 Gone), the relister that notices
// container state changes (like kubelet's PLEG, one ListContainers per
// RelistPeriod), the housekeeping that removes what belongs to no known pod,
// the event recorder when none is injected, the kubelet endpoint, and one
// worker goroutine per pod. Each pod's state (sandbox, back-off, last
// reported status) is owned by its worker alone; other goroutines only hand
// it the latest pod object or a wake-up. Run returns when its context ends,
// after every goroutine it started has stopped.
//
// Containers outlive the agent: stopping the agent stops no container, and a
// new agent adopts what runs (containers are found by their labels; the
// sandbox and network calls are idempotent).
//
// # Lifecycle of a pod
//
// For each pod the worker repeats one sync: observe the pod's containers,
// decide with podsync.ComputeActions, act (ensure sandbox and network, kill,
// remove, create and start containers), compute the status with
// podsync.ComputeStatus and patch it through pods/<name>/status when it
// changed. A pod with a deletionTimestamp, or one that vanished from the API,
// is torn down (containers stopped with the grace period and removed,
// network detached, sandbox, pod directory and logs removed) and, if it
// still exists, deleted with gracePeriodSeconds=0 and a UID precondition.
package agent

// Package podsync holds the agent's pure pod decisions, kept free of I/O so
// they can be tested with tables:
//
//   - ComputeActions: (pod spec, observed runtime state, back-off) → what to
//     do next (ensure the sandbox, start, kill or remove containers, wait in
//     CrashLoopBackOff, tear the pod down), like kubelet's computePodActions;
//   - ComputeStatus and ComputePhase: (pod spec, observed state) → the
//     PodStatus the agent reports, like kubelet's generateAPIPodStatus and
//     getPhase;
//   - Backoff: the per-container restart back-off (10 s doubling to 5 min,
//     forgotten after 10 min without a restart), like kubelet's
//     flowcontrol.Backoff.
//
// Nothing here is safe for concurrent use unless said so: each pod's
// decisions are made by the one goroutine that owns the pod.
package podsync

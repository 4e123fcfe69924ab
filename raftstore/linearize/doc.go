// Package linearize records histories of concurrent operations on a set of
// registers (one per key) and checks them for linearizability with
// github.com/anishathalye/porcupine.
//
// It is test infrastructure: nothing in the kedge binary imports it. A test
// gives Record one Client per simulated client (each may talk to a
// different endpoint of the same cluster), lets a nemesis kill, restart or
// partition servers meanwhile, and passes the history to Check.
//
// Each operation is a read, a blind write, or a compare-and-swap whose
// expected value the client read at the start of the same operation (the
// Kubernetes pattern: GET, then PUT with the resourceVersion read). Values
// written are unique, so equal values mean the same write.
//
// Outcomes: a read that fails is dropped (it changed nothing). A write or
// CAS that fails with ErrNotApplied (the request never reached a server) is
// dropped too. Any other failure leaves the outcome unknown: the operation
// is kept with a return time after every other operation, so the checker may
// place it anywhere after its call, including "never" (at the end, where its
// effect is unobservable).
package linearize

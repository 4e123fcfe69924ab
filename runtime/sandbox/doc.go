// Package sandbox keeps the shared namespaces of a pod alive without a pause process.
//
// For each pod the Manager creates a new network, IPC and UTS namespace and pins each one
// by bind-mounting its nsfs file onto a regular file under Config.Dir:
//
//	<Dir>/<podUID>/net   network namespace (absent for hostNetwork pods)
//	<Dir>/<podUID>/ipc   IPC namespace
//	<Dir>/<podUID>/uts   UTS namespace, hostname = Spec.Hostname (absent for hostNetwork pods)
//
// The runtime hands these paths to libcontainer, whose containers join the namespaces by
// path; the pod network (netpolicy) moves the pod's interface into the net namespace by the
// same path. A namespace lives as long as its bind mount or any process in it, so pods
// outlive the agent: after a restart Ensure adopts what is already mounted.
//
// # Why no mount-propagation tricks
//
// Copies of the pinning mounts can end up in other mount namespaces (a container that
// mounts the host's /run, a systemd unit with a private mount namespace). Remove unmounts
// the pin in the agent's namespace and then unlinks the file; since Linux 3.18 unlinking a
// mount point detaches the copies in every other mount namespace, so no namespace leaks.
//
// # Threads
//
// Namespaces are created on a goroutine locked to a fresh OS thread that unshares, pins the
// namespace through /proc/self/task/<tid>/ns/<kind>, and then exits while still locked, so
// the Go runtime destroys the thread instead of returning a thread in a foreign namespace to
// its pool.
package sandbox

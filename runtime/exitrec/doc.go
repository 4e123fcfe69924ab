// Package exitrec keeps the exit status of container init processes that
// the running kedge cannot wait for.
//
// A container's init is a child of the kedge process that started it, and
// only a parent learns a child's exit status. Two cases escape that: a
// container adopted after kedge restarted is not its child, and a container
// that ends while kedge is down has no parent that keeps its status (it is
// reparented to PID 1, which reaps it). Kubernetes users still expect the
// real exit code in the pod's status, so that an upgrade of kedge does not
// turn "exit 0" into "Unknown".
//
// The recorder (Run) is a small process per node, started by the runtime
// (Ensure) and outliving kedge. It listens to the kernel's process events
// connector and, for every PID registered in its directory (Dir.Register),
// writes the exit status to a file the runtime reads (Dir.Lookup) when it
// notices the container's end. It leaves by itself when nothing is
// registered and no runtime holds the directory. It also keeps file
// descriptors for the runtime (Dir.StoreFiles, fdstore.go): a TTY
// container's pty master and the write end of a container's stdin, which
// would otherwise close with kedge.
//
// Directory layout (on tmpfs: PIDs mean nothing after a reboot):
//
//	<dir>/recorder.lock   held (exclusive) by the running recorder
//	<dir>/owner.lock      held (shared) by every open runtime
//	<dir>/<pid>           a registration: "<start ticks> <container id>"
//	<dir>/<pid>.exit      a record: "<start ticks> <wait status>"
//	<dir>/fdstore.sock    the recorder's file descriptor store
//	<dir>/recorder.log    the recorder's log
package exitrec

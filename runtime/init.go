package runtime

import (
	"github.com/opencontainers/runc/libcontainer"

	"kedge.dev/kedge/internal/timerslack"

	// The device cgroup manager: without it libcontainer cannot apply the
	// device rules every container has.
	_ "github.com/opencontainers/cgroups/devices"
	// nsenter's C constructor runs before the Go runtime in the re-executed
	// init process and joins/creates the namespaces; linking this package
	// links it into every binary that runs containers.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// ContainerInit is the container side of StartContainer. The binary that
// uses this package must call it when os.Args[1] == "init", as early as
// possible (an init function of package main), for example:
//
//	func init() {
//		if len(os.Args) > 1 && os.Args[1] == "init" {
//			runtime.ContainerInit()
//		}
//	}
//
// It never returns: it becomes the container's process or exits.
func ContainerInit() {
	// The init inherited kedge's timer slack (kedge server sets a larger
	// one for itself); the container's processes get the kernel's default,
	// as under runc or containerd, whichever thread ends up exec'ing them.
	// Nothing to report to if this fails: the slack only changes timing.
	_ = timerslack.Set(timerslack.Default)
	libcontainer.Init()
}

package main

import (
	// nsenter's C constructor runs before the Go runtime when this binary
	// is re-executed as a container init; it must be linked in.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"

	"kedge.dev/kedge/runtime"
)

// containerInit becomes the container's process (libcontainer's init).
func containerInit() { runtime.ContainerInit() }

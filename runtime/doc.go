// Package runtime runs a node's containers in-process with libcontainer
// (runc as a library): images imported into a content-addressed store,
// root filesystems as overlay mounts of shared layer snapshots, cgroups v1
// limits, stdout/stderr in CRI log files, and a small JSON handle per
// container so that state survives a restart of the process.
//
// # Caller's duties
//
//   - The process must re-execute itself as the container init: when
//     os.Args[1] == "init", call ContainerInit before anything else (from
//     an init function of package main). This package links libcontainer's
//     nsenter C constructor, which runs first in that re-executed process.
//   - Run as root with overlayfs and cgroups mounted.
//   - Stop a container (StopContainer) before removing it if its processes
//     should get a chance to exit cleanly; RemoveContainer kills what runs.
//
// # Namespaces
//
// Every container gets new mount and PID namespaces. NetNS, IPCNS and UTSNS
// are paths of namespaces to join (the pod's, kept alive by bind mounts);
// an empty NetNS means the host's network namespace, while an empty IPCNS or
// UTSNS gives the container a new private namespace of its own.
//
// # Containers outlive the process
//
// Containers are not killed by Close or by the process exiting: their
// stdout and stderr are FIFOs in the container's directory that the
// container holds open for reading and writing, so output never breaks with
// SIGPIPE while no runtime reads it (it blocks once the pipe buffer is full
// instead). New reloads every handle; a container that was running is
// adopted: its FIFOs are read again and its end is noticed, but its exit
// code is lost (it was not our child), so it is reported as exited with
// Reason "Unknown" and exit code 255.
package runtime

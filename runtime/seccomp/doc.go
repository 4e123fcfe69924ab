// Package seccomp holds kedge's default seccomp profile ("RuntimeDefault")
// as Go data and turns it into libcontainer's configuration.
//
// The profile follows the allow-list Docker and containerd ship: every
// syscall an ordinary program needs is allowed, everything else fails with
// EPERM; syscalls guarded by a capability (mount, unshare, setns, ptrace,
// reboot, …) are allowed only when the container holds that capability in
// its bounding set; clone is allowed without namespace flags unless the
// container has CAP_SYS_ADMIN; clone3 fails with ENOSYS so that libc falls
// back to clone, whose flags the filter can inspect.
//
// Loading a filter needs libcontainer built with cgo and the "seccomp"
// build tag, linked against libseccomp (statically in kedge's release
// builds); Supported tells whether this binary can.
package seccomp

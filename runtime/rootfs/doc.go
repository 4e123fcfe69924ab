// Package rootfs turns image layers into container root filesystems:
// each layer is unpacked once into a snapshot directory keyed by its chain
// ID (shared by every image and container that has it), tar whiteouts are
// converted to overlayfs whiteouts, and a container's root is an overlay
// mount of the snapshot chain under a private upper/work directory pair.
package rootfs

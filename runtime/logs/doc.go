// Package logs writes and reads container logs in the CRI file format that
// kubelet and containerd use:
//
//	2016-10-06T00:17:09.669794202Z stdout F a complete line
//	2016-10-06T00:17:09.669794202Z stderr P the first 16 KiB of a longer line
//
// Each entry is "<RFC3339Nano timestamp> <stream> <tag> <content>\n" where the tag
// is F for a full line and P for a partial one (a line longer than the
// writer's maximum, split into chunks). The Writer side is fed by a
// container's stdout and stderr pipes; ReadLogs gives back what
// `kubectl logs` prints for the same file.
package logs

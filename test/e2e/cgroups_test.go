package e2e

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// cgroupRoot is the server's --cgroup-root.
func (s *server) cgroupRoot() string {
	for i, a := range s.args {
		if a == "--cgroup-root" && i+1 < len(s.args) {
			return s.args[i+1]
		}
	}
	return ""
}

// removeCgroupTree removes the (empty) cgroup directories under root in
// every v1 hierarchy, deepest first: the QoS cgroups (kubepods, burstable,
// besteffort) outlive their pods by design, like kubelet's, so a test
// server's whole tree is removed when it stops.
func removeCgroupTree(root string) {
	if root == "" || root == "/" {
		return
	}
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, h := range hierarchies {
		top := filepath.Join(h, root)
		var dirs []string
		filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
		for _, d := range dirs {
			os.Remove(d) // fails (EBUSY) while processes remain: left as is
		}
	}
}

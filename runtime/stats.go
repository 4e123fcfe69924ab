package runtime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	"golang.org/x/sys/unix"

	"kedge.dev/kedge/runtime/rootfs"
)

// ContainerStats is a sample of one container's resource usage, the
// figures kubelet's summary API and metrics report.
type ContainerStats struct {
	// Timestamp is when the sample was taken.
	Timestamp time.Time
	// CPUUsageNanos is the cumulative CPU time of the container's cgroup.
	CPUUsageNanos uint64
	// MemoryUsageBytes is the cgroup's memory usage, page cache included.
	MemoryUsageBytes uint64
	// MemoryWorkingSetBytes is usage minus inactive file pages (what the
	// OOM killer and kubelet's eviction look at).
	MemoryWorkingSetBytes uint64
	// Network counts the bytes and packets of the container's network
	// namespace, loopback excluded; zero for a host-network container.
	Network NetworkStats
	// RootfsUsedBytes is the disk space of the container's writable layer.
	RootfsUsedBytes uint64
	// RootfsInodesUsed is the number of inodes of the writable layer.
	RootfsInodesUsed uint64
}

// NetworkStats are cumulative interface counters.
type NetworkStats struct {
	RxBytes, TxBytes, RxPackets, TxPackets, RxErrors, TxErrors uint64
}

// Stats samples a running container's usage. The network figures come
// from the container's network namespace (shared by the pod); the file
// system figures walk the container's upper directory. A container that
// is not running fails with ErrInvalidState.
func (r *Runtime) Stats(ctx context.Context, id string) (ContainerStats, error) {
	c, err := r.get(id)
	if err != nil {
		return ContainerStats{}, err
	}
	c.mu.Lock()
	if c.removed {
		c.mu.Unlock()
		return ContainerStats{}, fmt.Errorf("container %q: %w", id, ErrContainerNotFound)
	}
	if c.h.State != StateRunning {
		c.mu.Unlock()
		return ContainerStats{}, fmt.Errorf("stats of container %s in state %s: %w", id, c.h.State, ErrInvalidState)
	}
	cg, pid, hostNet, dir := c.h.Cgroup, c.h.Pid, c.h.Spec.NetNS == "", c.dir
	c.mu.Unlock()

	st := ContainerStats{Timestamp: time.Now()}
	m, err := manager.New(&cgroups.Cgroup{Path: cg, Resources: &cgroups.Resources{}})
	if err != nil {
		return st, fmt.Errorf("stats of container %s: %w", id, err)
	}
	cs, err := m.GetStats()
	if err != nil {
		return st, fmt.Errorf("stats of container %s: read cgroup: %w", id, err)
	}
	st.CPUUsageNanos = cs.CpuStats.CpuUsage.TotalUsage
	st.MemoryUsageBytes, st.MemoryWorkingSetBytes = workingSet(cs.MemoryStats, r.host.v2)
	if !hostNet {
		if st.Network, err = netDevStats(filepath.Join("/proc", strconv.Itoa(pid), "net", "dev")); err != nil {
			return st, fmt.Errorf("stats of container %s: %w", id, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	st.RootfsUsedBytes, st.RootfsInodesUsed, err = diskUsage(ctx, rootfs.NewLayout(dir).Upper)
	if err != nil {
		return st, fmt.Errorf("stats of container %s: %w", id, err)
	}
	return st, nil
}

// workingSet returns usage and working set from memory stats: usage minus
// inactive file pages, as cAdvisor computes it.
func workingSet(ms cgroups.MemoryStats, v2 bool) (usage, ws uint64) {
	usage = ms.Usage.Usage
	key := "total_inactive_file"
	if v2 {
		key = "inactive_file"
	}
	inactive := ms.Stats[key]
	if inactive < usage {
		return usage, usage - inactive
	}
	return usage, 0
}

// netDevStats sums the counters of /proc/<pid>/net/dev, loopback excluded.
func netDevStats(file string) (NetworkStats, error) {
	var ns NetworkStats
	f, err := os.Open(file)
	if err != nil {
		return ns, fmt.Errorf("read network counters: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue // header lines have no colon
		}
		fields := strings.Fields(rest)
		if len(fields) < 16 {
			continue
		}
		v := func(i int) uint64 { n, _ := strconv.ParseUint(fields[i], 10, 64); return n }
		ns.RxBytes += v(0)
		ns.RxPackets += v(1)
		ns.RxErrors += v(2)
		ns.TxBytes += v(8)
		ns.TxPackets += v(9)
		ns.TxErrors += v(10)
	}
	return ns, sc.Err()
}

// diskUsage returns the bytes (allocated blocks) and inodes under dir, each
// hard-linked inode counted once.
func diskUsage(ctx context.Context, dir string) (bytes, inodes uint64, err error) {
	seen := map[uint64]bool{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return nil
		}
		if st.Nlink > 1 {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		bytes += uint64(st.Blocks) * 512
		inodes++
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("measure %s: %w", dir, err)
	}
	return bytes, inodes, nil
}

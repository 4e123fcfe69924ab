package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"kedge.dev/kedge/runtime"
)

// The pod directory, <DataDir>/agent/pods/<uid>, holds what the agent
// mounts into the pod's containers:
//
//	etc-hosts, etc-hostname, resolv.conf
//	containers/<name>/<attempt>-termination-log
//	volumes/kubernetes.io~empty-dir/<volume>

func (a *Agent) podDir(uid types.UID) string {
	return filepath.Join(a.cfg.agentDir(), "pods", string(uid))
}

func (a *Agent) podLogDir(pod *corev1.Pod) string {
	return filepath.Join(a.cfg.PodLogDir, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID))
}

func (a *Agent) containerLogPath(pod *corev1.Pod, name string, attempt int) string {
	return filepath.Join(a.podLogDir(pod), name, strconv.Itoa(attempt)+".log")
}

func (a *Agent) terminationLogPath(uid types.UID, name string, attempt int) string {
	return filepath.Join(a.podDir(uid), "containers", name, strconv.Itoa(attempt)+"-termination-log")
}

func (a *Agent) emptyDirPath(uid types.UID, volume string) string {
	return filepath.Join(a.podDir(uid), "volumes", "kubernetes.io~empty-dir", volume)
}

// preparePodDir writes the pod's hosts, hostname and resolv.conf files and
// creates its emptyDir volumes. It is idempotent (runs again after an agent
// restart, keeping volume contents).
func (a *Agent) preparePodDir(pod *corev1.Pod, podIP string) error {
	dir := a.podDir(pod.UID)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create pod directory: %w", err)
	}
	hosts, err := a.hostsFile(pod, podIP)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"etc-hosts":    hosts,
		"etc-hostname": []byte(podHostname(pod) + "\n"),
	}
	if files["resolv.conf"], err = a.resolvConf(); err != nil {
		return err
	}
	for name, data := range files {
		if err := writeFileAtomic(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("write pod %s: %w", name, err)
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.EmptyDir == nil {
			continue
		}
		if err := a.ensureEmptyDir(pod.UID, v.Name, v.EmptyDir, fsGroup(pod)); err != nil {
			return err
		}
	}
	return nil
}

// hostsFile returns the pod's /etc/hosts: kubelet's managed file with the
// pod's address and hostname, or the host's file for hostNetwork pods.
func (a *Agent) hostsFile(pod *corev1.Pod, podIP string) ([]byte, error) {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file.\n")
	if pod.Spec.HostNetwork {
		data, err := os.ReadFile(a.cfg.HostsFile)
		if err != nil {
			return nil, fmt.Errorf("read host hosts file: %w", err)
		}
		b.Write(data)
	} else {
		b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
		b.WriteString("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
		host := podHostname(pod)
		if pod.Spec.Subdomain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s.%s.svc.cluster.local\t%s\n", podIP, host, pod.Spec.Subdomain, pod.Namespace, host)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", podIP, host)
		}
	}
	for _, ha := range pod.Spec.HostAliases {
		fmt.Fprintf(&b, "\n# Entries added by HostAliases.\n%s\t%s\n", ha.IP, strings.Join(ha.Hostnames, "\t"))
	}
	return []byte(b.String()), nil
}

// resolvConf returns the host's resolver configuration for pods. A file
// that only points at a loopback stub resolver (systemd-resolved) is
// useless inside a pod's network namespace, so the upstream file is used
// then, as kubelet's --resolv-conf advice says.
func (a *Agent) resolvConf() ([]byte, error) {
	data, err := os.ReadFile(a.cfg.ResolvConf)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", a.cfg.ResolvConf, err)
	}
	if onlyLoopbackNameservers(data) {
		if up, err := os.ReadFile("/run/systemd/resolve/resolv.conf"); err == nil {
			return up, nil
		}
	}
	return data, nil
}

func onlyLoopbackNameservers(data []byte) bool {
	found := false
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			found = true
			if !strings.HasPrefix(f[1], "127.") && f[1] != "::1" {
				return false
			}
		}
	}
	return found
}

// ensureEmptyDir creates an emptyDir volume; medium Memory gets a tmpfs
// (sized by sizeLimit), mounted once. With an fsGroup (gid ≥ 0) the
// directory belongs to that group with the setgid bit, as kubelet's volume
// ownership management leaves it, so new files inherit the group.
func (a *Agent) ensureEmptyDir(uid types.UID, name string, src *corev1.EmptyDirVolumeSource, gid int) error {
	dir := a.emptyDirPath(uid, name)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("create emptyDir %s: %w", name, err)
	}
	if err := os.Chmod(dir, 0o777); err != nil { // any container user may write, as in kubelet
		return fmt.Errorf("chmod emptyDir %s: %w", name, err)
	}
	if src.Medium == corev1.StorageMediumMemory {
		if err := mountEmptyDirTmpfs(dir, name, src); err != nil {
			return err
		}
	}
	if gid < 0 {
		return nil
	}
	if err := os.Lchown(dir, -1, gid); err != nil {
		return fmt.Errorf("set fsGroup of emptyDir %s: %w", name, err)
	}
	if err := os.Chmod(dir, 0o777|os.ModeSetgid); err != nil {
		return fmt.Errorf("set fsGroup of emptyDir %s: %w", name, err)
	}
	return nil
}

// mountEmptyDirTmpfs mounts a tmpfs on dir unless one is there.
func mountEmptyDirTmpfs(dir, name string, src *corev1.EmptyDirVolumeSource) error {
	if mounted, err := isMountPoint(dir); err != nil || mounted {
		return err
	}
	opts := "mode=0777"
	if src.SizeLimit != nil && !src.SizeLimit.IsZero() {
		opts += ",size=" + strconv.FormatInt(src.SizeLimit.Value(), 10)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs for emptyDir %s: %w", name, err)
	}
	return nil
}

// isMountPoint reports whether dir is on another device than its parent.
func isMountPoint(dir string) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return false, fmt.Errorf("stat %s: %w", dir, err)
	}
	if err := unix.Stat(filepath.Dir(dir), &parent); err != nil {
		return false, fmt.Errorf("stat %s: %w", filepath.Dir(dir), err)
	}
	return st.Dev != parent.Dev, nil
}

// containerMounts returns the bind mounts of one instance: the pod's
// hosts, hostname and resolv.conf files, the termination log, and the
// container's volumeMounts.
func (a *Agent) containerMounts(pod *corev1.Pod, c *corev1.Container, attempt int) ([]runtime.Mount, error) {
	dir := a.podDir(pod.UID)
	mounts := []runtime.Mount{
		{Source: filepath.Join(dir, "etc-hosts"), Destination: "/etc/hosts"},
		{Source: filepath.Join(dir, "etc-hostname"), Destination: "/etc/hostname"},
	}
	if _, err := os.Stat(filepath.Join(dir, "resolv.conf")); err == nil {
		mounts = append(mounts, runtime.Mount{Source: filepath.Join(dir, "resolv.conf"), Destination: "/etc/resolv.conf"})
	}
	termPath := c.TerminationMessagePath
	if termPath == "" {
		termPath = corev1.TerminationMessagePathDefault
	}
	tl := a.terminationLogPath(pod.UID, c.Name, attempt)
	if err := os.MkdirAll(filepath.Dir(tl), 0o750); err != nil {
		return nil, fmt.Errorf("create termination log directory: %w", err)
	}
	if err := os.WriteFile(tl, nil, 0o666); err != nil {
		return nil, fmt.Errorf("create termination log: %w", err)
	}
	mounts = append(mounts, runtime.Mount{Source: tl, Destination: termPath})
	if err := os.MkdirAll(filepath.Dir(a.containerLogPath(pod, c.Name, attempt)), 0o755); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}

	volumes := map[string]*corev1.Volume{}
	for i := range pod.Spec.Volumes {
		volumes[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i]
	}
	for _, vm := range c.VolumeMounts {
		v := volumes[vm.Name]
		if v == nil {
			return nil, fmt.Errorf("volumeMount %q: no volume of that name", vm.Name)
		}
		src, err := a.volumeSource(pod, v)
		if err != nil {
			return nil, err
		}
		if vm.SubPath != "" {
			if filepath.IsAbs(vm.SubPath) || strings.Contains(vm.SubPath, "..") {
				return nil, fmt.Errorf("volumeMount %q: invalid subPath %q", vm.Name, vm.SubPath)
			}
			src = filepath.Join(src, vm.SubPath)
			if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(src, 0o755); err != nil {
					return nil, fmt.Errorf("create subPath %s: %w", src, err)
				}
			}
		}
		mounts = append(mounts, runtime.Mount{Source: src, Destination: vm.MountPath, ReadOnly: vm.ReadOnly})
	}
	return mounts, nil
}

// volumeSource returns the host path backing a volume, creating or checking
// it as its type says.
func (a *Agent) volumeSource(pod *corev1.Pod, v *corev1.Volume) (string, error) {
	switch {
	case v.EmptyDir != nil:
		return a.emptyDirPath(pod.UID, v.Name), nil
	case v.HostPath != nil:
		return v.HostPath.Path, checkHostPath(v.HostPath)
	default:
		return "", fmt.Errorf("volume %q: only emptyDir and hostPath volumes are supported yet", v.Name)
	}
}

// checkHostPath applies a hostPath volume's type.
func checkHostPath(hp *corev1.HostPathVolumeSource) error {
	typ := corev1.HostPathUnset
	if hp.Type != nil {
		typ = *hp.Type
	}
	st, err := os.Stat(hp.Path)
	exists := err == nil
	want := func(ok bool, what string) error {
		if !exists || !ok {
			return fmt.Errorf("hostPath type check failed: %s is not a %s", hp.Path, what)
		}
		return nil
	}
	switch typ {
	case corev1.HostPathUnset:
		return nil
	case corev1.HostPathDirectoryOrCreate:
		if !exists {
			return os.MkdirAll(hp.Path, 0o755)
		}
		return want(st.IsDir(), "directory")
	case corev1.HostPathFileOrCreate:
		if !exists {
			if err := os.MkdirAll(filepath.Dir(hp.Path), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(hp.Path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return fmt.Errorf("create hostPath file: %w", err)
			}
			return f.Close()
		}
		return want(st.Mode().IsRegular(), "file")
	case corev1.HostPathDirectory:
		return want(exists && st.IsDir(), "directory")
	case corev1.HostPathFile:
		return want(exists && st.Mode().IsRegular(), "file")
	case corev1.HostPathSocket:
		return want(exists && st.Mode()&os.ModeSocket != 0, "socket")
	case corev1.HostPathCharDev:
		return want(exists && st.Mode()&os.ModeCharDevice != 0, "character device")
	case corev1.HostPathBlockDev:
		return want(exists && st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0, "block device")
	default:
		return fmt.Errorf("hostPath: unknown type %q", typ)
	}
}

// readTerminationMessage returns the first 4 KiB of a termination log.
func readTerminationMessage(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	data, _ := io.ReadAll(io.LimitReader(f, maxTerminationMessage))
	return string(data)
}

// removeInstanceFiles removes the log and termination log of one instance.
func (a *Agent) removeInstanceFiles(pod *corev1.Pod, name string, attempt int) {
	os.Remove(a.containerLogPath(pod, name, attempt))
	os.Remove(a.terminationLogPath(pod.UID, name, attempt))
}

// removePodFiles unmounts the pod's tmpfs volumes and removes its
// directory and its logs.
func (a *Agent) removePodFiles(pod *corev1.Pod) error {
	if err := unmountUnder(a.podDir(pod.UID)); err != nil {
		return err
	}
	if err := os.RemoveAll(a.podDir(pod.UID)); err != nil {
		return fmt.Errorf("remove pod directory: %w", err)
	}
	if err := os.RemoveAll(a.podLogDir(pod)); err != nil {
		return fmt.Errorf("remove pod logs: %w", err)
	}
	return nil
}

// unmountUnder unmounts every emptyDir tmpfs of a pod directory, so that
// RemoveAll never descends into a mounted file system.
func unmountUnder(podDir string) error {
	vols, _ := filepath.Glob(filepath.Join(podDir, "volumes", "*", "*"))
	for _, v := range vols {
		mounted, err := isMountPoint(v)
		if err != nil || !mounted {
			continue
		}
		if err := unix.Unmount(v, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", v, err)
		}
	}
	return nil
}

// writeFileAtomic replaces path with data through a rename, so a container
// never reads a half-written file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	goruntime "runtime"
	"strconv"

	"golang.org/x/sys/unix"

	"kedge.dev/kedge/agent/kubeletapi"
	"kedge.dev/kedge/runtime"
)

// containerExec runs extra processes in containers (runtime.Runtime).
type containerExec interface {
	Exec(ctx context.Context, id string, cmd []string, sio runtime.ExecIO) (int, error)
}

// containerAttach joins streams to a container's main process
// (runtime.Runtime).
type containerAttach interface {
	Attach(ctx context.Context, id string, sio runtime.ExecIO) error
}

// errNotSupported: the runtime given to the agent lacks a capability.
var errNotSupported = errors.New("not supported by this runtime")

// streamer serves the kubelet endpoint's exec, attach and port-forward
// from the runtime's containers.
type streamer struct{ a *Agent }

var _ kubeletapi.Streamer = streamer{}

// Exec runs cmd in the running instance of a pod's container.
func (s streamer) Exec(ctx context.Context, namespace, pod, container string, cmd []string, sio runtime.ExecIO) (int, error) {
	ex, ok := s.a.rt.(containerExec)
	if !ok {
		return -1, fmt.Errorf("exec: %w", errNotSupported)
	}
	st, err := s.running(ctx, namespace, pod, container)
	if err != nil {
		return -1, err
	}
	return ex.Exec(ctx, st.ID, cmd, sio)
}

// Attach joins sio to the running instance of a pod's container.
func (s streamer) Attach(ctx context.Context, namespace, pod, container string, sio runtime.ExecIO) error {
	at, ok := s.a.rt.(containerAttach)
	if !ok {
		return fmt.Errorf("attach: %w", errNotSupported)
	}
	st, err := s.running(ctx, namespace, pod, container)
	if err != nil {
		return err
	}
	return at.Attach(ctx, st.ID, sio)
}

// DialPod connects to 127.0.0.1:port (then [::1]:port) in the network
// namespace of the pod's running containers.
func (s streamer) DialPod(ctx context.Context, namespace, pod string, port uint16) (net.Conn, error) {
	st, err := s.running(ctx, namespace, pod, "")
	if err != nil {
		return nil, err
	}
	ns := "/proc/" + strconv.Itoa(st.Pid) + "/ns/net"
	c, err := dialInNetNS(ctx, ns, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		if c6, err6 := dialInNetNS(ctx, ns, net.JoinHostPort("::1", strconv.Itoa(int(port)))); err6 == nil {
			return c6, nil
		}
		return nil, err
	}
	return c, nil
}

// running finds the running instance of a pod's container; container ""
// means any running container of the pod.
func (s streamer) running(ctx context.Context, namespace, pod, container string) (runtime.ContainerStatus, error) {
	a := s.a
	a.mu.Lock()
	uid, ok := a.names[namespace+"/"+pod]
	a.mu.Unlock()
	if !ok {
		return runtime.ContainerStatus{}, fmt.Errorf("pod %s/%s on node %s: %w", namespace, pod, a.cfg.NodeName, kubeletapi.ErrNotFound)
	}
	cs, err := a.podContainers(ctx, uid)
	if err != nil {
		return runtime.ContainerStatus{}, err
	}
	for _, c := range cs {
		if c.State == runtime.StateRunning && c.Pid > 0 && (container == "" || c.Labels[LabelContainerName] == container) {
			return c, nil
		}
	}
	if container == "" {
		return runtime.ContainerStatus{}, fmt.Errorf("pod %s/%s has no running container: %w", namespace, pod, kubeletapi.ErrNotFound)
	}
	return runtime.ContainerStatus{}, fmt.Errorf("container %q of pod %s/%s is not running: %w", container, namespace, pod, kubeletapi.ErrNotFound)
}

// dialInNetNS dials addr over TCP from inside the network namespace at
// nsPath. The socket is made on an OS thread that joined the namespace;
// the thread is never reused (the goroutine exits locked, so Go ends it).
func dialInNetNS(ctx context.Context, nsPath, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		// No UnlockOSThread: the thread's namespace is changed for good.
		fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: fmt.Errorf("open pod network namespace: %w", err)}
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			ch <- result{err: fmt.Errorf("enter pod network namespace: %w", err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

package kubeletapi

import (
	"context"
	"net"
	"net/http"

	corev1 "k8s.io/api/core/v1"

	"kedge.dev/kedge/runtime"
)

// Streamer runs the sessions of exec, attach and port-forward; the agent
// implements it. Methods block for the whole session and must return when
// ctx ends (the client went away); errors wrap ErrNotFound for an unknown
// pod or container.
type Streamer interface {
	// Exec runs cmd in a pod's running container and returns its exit code.
	Exec(ctx context.Context, namespace, pod, container string, cmd []string, sio runtime.ExecIO) (int, error)
	// Attach connects sio to the main process of a pod's running container
	// until the process ends or ctx ends.
	Attach(ctx context.Context, namespace, pod, container string, sio runtime.ExecIO) error
	// DialPod opens a TCP connection to port on the pod's loopback, inside
	// its network namespace.
	DialPod(ctx context.Context, namespace, pod string, port uint16) (net.Conn, error)
}

// exec serves kubelet's /exec/{namespace}/{pod}/{container}?command=...:
// the session protocols are in stream.go; the command's end is reported on
// the error stream (exit code as a NonZeroExitCode status).
func (s *Server) exec(w http.ResponseWriter, r *http.Request) {
	ns, pod, ctr := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	cmd := r.URL.Query()[corev1.ExecCommandParam]
	if len(cmd) == 0 {
		http.Error(w, "missing command", http.StatusBadRequest)
		return
	}
	opts, err := parseStreamOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ss, ok := s.openSession(w, r, opts)
	if !ok {
		return
	}
	defer ss.conn.Close()
	ctx, cancel := sessionContext(r.Context(), ss.done)
	defer cancel()
	code, err := s.streams.Exec(ctx, ns, pod, ctr, cmd, ss.execIO())
	if ctx.Err() != nil {
		s.log.Debug("exec client went away", "pod", ns+"/"+pod, "container", ctr)
		return
	}
	if err != nil {
		s.log.Debug("exec failed", "pod", ns+"/"+pod, "container", ctr, "err", err)
	}
	if werr := ss.writeStatus(exitStatus(code, err)); werr != nil {
		s.log.Debug("writing exec status", "pod", ns+"/"+pod, "err", werr)
	}
}

// sessionContext ends when parent ends or done is closed.
func sessionContext(parent context.Context, done <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

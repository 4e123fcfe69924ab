package kubeletapi

import (
	"net/http"
)

// attach serves kubelet's /attach/{namespace}/{pod}/{container}: the
// client's streams are joined to the container's main process (its output
// from now on, its stdin when the container has stdin: true) until the
// process exits or the client detaches.
func (s *Server) attach(w http.ResponseWriter, r *http.Request) {
	ns, pod, ctr := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
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
	err = s.streams.Attach(ctx, ns, pod, ctr, ss.execIO())
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.log.Debug("attach failed", "pod", ns+"/"+pod, "container", ctr, "err", err)
	}
	if werr := ss.writeStatus(exitStatus(0, err)); werr != nil {
		s.log.Debug("writing attach status", "pod", ns+"/"+pod, "err", werr)
	}
}

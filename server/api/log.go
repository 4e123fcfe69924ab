package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"kedge.dev/kedge/raftstore"
)

// NodeProxy is how the API server reaches a node's kubelet endpoint.
type NodeProxy struct {
	// Client makes the requests (TLS settings, timeouts other than of
	// streams). Required when pods/log is served.
	Client *http.Client
	// Token is sent as "Authorization: Bearer <Token>" when not empty.
	Token string
	// BaseURL returns the kubelet endpoint of a node. Default
	// KubeletBaseURL.
	BaseURL func(node *corev1.Node) (*url.URL, error)
}

// KubeletBaseURL is https://<InternalIP>:<status.daemonEndpoints.
// kubeletEndpoint.Port> of a node.
func KubeletBaseURL(node *corev1.Node) (*url.URL, error) {
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	if port <= 0 {
		return nil, fmt.Errorf("node %s reports no kubelet endpoint port (status.daemonEndpoints.kubeletEndpoint.port)", node.Name)
	}
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && a.Address != "" {
			return &url.URL{Scheme: "https", Host: net.JoinHostPort(a.Address, strconv.Itoa(int(port)))}, nil
		}
	}
	return nil, fmt.Errorf("node %s reports no InternalIP address", node.Name)
}

// logParams are the PodLogOptions passed through to the kubelet.
var logParams = []string{"follow", "previous", "timestamps", "tailLines", "sinceSeconds", "sinceTime", "limitBytes"}

// maxUpstreamError is how much of a kubelet error body becomes the message.
const maxUpstreamError = 16 << 10

// serveLog proxies pods/log to the kubelet of the pod's node, streaming
// the body with a flush after each read so `kubectl logs -f` follows.
func (s *Server) serveLog(w http.ResponseWriter, r *http.Request, t target) {
	obj, _, err := s.getObject(r.Context(), t.res, t.namespace, t.name)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		s.writeError(w, r, fmt.Errorf("pods/log on %T", obj), t.res.gr, t.name)
		return
	}
	q := r.URL.Query()
	container, err := logContainer(pod, q.Get("container"))
	if err == nil {
		err = checkLogParams(q)
	}
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	if pod.Spec.NodeName == "" {
		// Kubernetes answers an empty log for a pod not yet scheduled.
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		return
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	resp, err := s.kubeletLogs(ctx, pod, container, q)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamError))
		msg := strings.TrimSpace(string(body))
		if msg == "" {
			msg = fmt.Sprintf("the kubelet of node %s answered %s", pod.Spec.NodeName, resp.Status)
		}
		s.writeError(w, r, errWithCode(resp.StatusCode, msg), t.res.gr, t.name)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				s.log.Debug("log stream ended", "pod", t.namespace+"/"+t.name, "err", err)
			}
			return
		}
	}
}

// kubeletLogs asks the node's kubelet for a container's log.
func (s *Server) kubeletLogs(ctx context.Context, pod *corev1.Pod, container string, q url.Values) (*http.Response, error) {
	node, err := s.nodeFromStore(ctx, pod.Spec.NodeName)
	if errors.Is(err, raftstore.ErrNotFound) {
		return nil, apierrors.NewNotFound(corev1.Resource("nodes"), pod.Spec.NodeName)
	}
	if err != nil {
		return nil, err
	}
	base, err := s.cfg.NodeProxy.BaseURL(node)
	if err != nil {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("cannot reach the kubelet of node %s: %v", node.Name, err))
	}
	u := *base
	u.Path = strings.TrimSuffix(u.Path, "/") + "/containerLogs/" + url.PathEscape(pod.Namespace) + "/" +
		url.PathEscape(pod.Name) + "/" + url.PathEscape(container)
	up := url.Values{}
	for _, k := range logParams {
		if v := q.Get(k); v != "" {
			up.Set(k, v)
		}
	}
	u.RawQuery = up.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build kubelet log request: %w", err)
	}
	if s.cfg.NodeProxy.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.NodeProxy.Token)
	}
	resp, err := s.cfg.NodeProxy.Client.Do(req)
	if err != nil {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("cannot reach the kubelet of node %s: %v", node.Name, err))
	}
	return resp, nil
}

// logContainer picks the container as Kubernetes does: the only one when
// none is named.
func logContainer(pod *corev1.Pod, name string) (string, error) {
	names := func(cs []corev1.Container) string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Name)
		}
		return strings.Join(out, " ")
	}
	if name == "" {
		switch len(pod.Spec.Containers) {
		case 1:
			return pod.Spec.Containers[0].Name, nil
		case 0:
			return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s", pod.Name))
		}
		msg := fmt.Sprintf("a container name must be specified for pod %s, choose one of: [%s]", pod.Name, names(pod.Spec.Containers))
		if len(pod.Spec.InitContainers) > 0 {
			msg += fmt.Sprintf(" or one of the init containers: [%s]", names(pod.Spec.InitContainers))
		}
		return "", apierrors.NewBadRequest(msg)
	}
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range list {
			if c.Name == name {
				return name, nil
			}
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return name, nil
		}
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
}

// checkLogParams validates PodLogOptions before bothering the kubelet.
func checkLogParams(q url.Values) error {
	for _, k := range []string{"tailLines", "sinceSeconds", "limitBytes"} {
		if v := q.Get(k); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || (k != "tailLines" && n == 0) {
				return apierrors.NewBadRequest(fmt.Sprintf("%s: invalid value %q", k, v))
			}
		}
	}
	if v := q.Get("sinceTime"); v != "" {
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			return apierrors.NewBadRequest(fmt.Sprintf("sinceTime: invalid value %q: must be RFC 3339", v))
		}
		if q.Get("sinceSeconds") != "" {
			return apierrors.NewBadRequest("at most one of sinceTime or sinceSeconds may be specified")
		}
	}
	for _, k := range []string{"follow", "previous", "timestamps"} {
		if v := q.Get(k); v != "" {
			if _, err := strconv.ParseBool(v); err != nil {
				return apierrors.NewBadRequest(fmt.Sprintf("%s: invalid value %q", k, v))
			}
		}
	}
	return nil
}

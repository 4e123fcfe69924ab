package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"kedge.dev/kedge/raftstore"
)

// streamSubresources are the pod subresources proxied to the node's
// kubelet with a protocol upgrade (SPDY or WebSocket), as kube-apiserver's
// UpgradeAwareHandler does: exec, attach and portforward.
var streamSubresources = map[string]bool{"exec": true, "attach": true, "portforward": true}

// serveStream proxies pods/exec, pods/attach and pods/portforward to the
// kubelet endpoint of the pod's node. The upgrade is negotiated end to end
// between the client and the kubelet: this server checks the request,
// replaces the client's credentials by the kubelet token and splices the
// two connections once the kubelet answers 101 Switching Protocols.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, t target) {
	obj, _, err := s.getObject(r.Context(), t.res, t.namespace, t.name)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		s.writeError(w, r, fmt.Errorf("pods/%s on %T", t.sub, obj), t.res.gr, t.name)
		return
	}
	path, query, err := kubeletStreamPath(pod, t.sub, r.URL.Query())
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	if pod.Spec.NodeName == "" {
		s.writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name)), t.res.gr, t.name)
		return
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		s.writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("cannot %s into a container in a completed pod; current phase is %s", t.sub, pod.Status.Phase)), t.res.gr, t.name)
		return
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	base, err := s.kubeletBase(ctx, pod.Spec.NodeName)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	u := *base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = query.Encode()
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = &u
			pr.Out.Host = ""
			pr.Out.Header.Del("Authorization")
			pr.Out.Header.Del("Impersonate-User")
			pr.Out.Header.Del("Impersonate-Group")
			if s.cfg.NodeProxy.Token != "" {
				pr.Out.Header.Set("Authorization", "Bearer "+s.cfg.NodeProxy.Token)
			}
		},
		Transport: s.cfg.NodeProxy.Client.Transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if ctx.Err() != nil {
				return
			}
			s.writeError(w, r, apierrors.NewServiceUnavailable(fmt.Sprintf("cannot reach the kubelet of node %s: %v", pod.Spec.NodeName, err)), t.res.gr, t.name)
		},
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if rp.Transport == nil {
		rp.Transport = http.DefaultTransport
	}
	// The spliced connections end with ctx: the client's request or Close.
	rp.ServeHTTP(w, r.WithContext(ctx))
}

// kubeletBase is the kubelet endpoint of a node.
func (s *Server) kubeletBase(ctx context.Context, nodeName string) (*url.URL, error) {
	node, err := s.nodeFromStore(ctx, nodeName)
	if errors.Is(err, raftstore.ErrNotFound) {
		return nil, apierrors.NewNotFound(corev1.Resource("nodes"), nodeName)
	}
	if err != nil {
		return nil, err
	}
	base, err := s.cfg.NodeProxy.BaseURL(node)
	if err != nil {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("cannot reach the kubelet of node %s: %v", node.Name, err))
	}
	return base, nil
}

// kubeletStreamPath validates the PodExecOptions, PodAttachOptions or
// PodPortForwardOptions of a request and returns the kubelet's path and
// query (kubelet's parameter names, booleans as "1").
func kubeletStreamPath(pod *corev1.Pod, sub string, q url.Values) (string, url.Values, error) {
	esc := url.PathEscape
	if sub == "portforward" {
		out := url.Values{}
		if p := q["ports"]; len(p) > 0 {
			out["port"] = p
		}
		return "/portForward/" + esc(pod.Namespace) + "/" + esc(pod.Name), out, nil
	}
	container, err := logContainer(pod, q.Get("container"))
	if err != nil {
		return "", nil, err
	}
	out := url.Values{}
	some := false
	for _, p := range []struct{ api, kubelet string }{
		{"stdin", corev1.ExecStdinParam}, {"stdout", corev1.ExecStdoutParam},
		{"stderr", corev1.ExecStderrParam}, {"tty", corev1.ExecTTYParam},
	} {
		if isTrue(q.Get(p.api)) {
			out.Set(p.kubelet, "1")
			some = some || p.api != "tty"
		}
	}
	if !some {
		return "", nil, apierrors.NewBadRequest("you must specify at least 1 of stdin, stdout, stderr")
	}
	if sub == "exec" {
		cmd := q["command"]
		if len(cmd) == 0 {
			return "", nil, apierrors.NewBadRequest("you must specify at least one command for the container")
		}
		out["command"] = cmd
	}
	return "/" + sub + "/" + esc(pod.Namespace) + "/" + esc(pod.Name) + "/" + esc(container), out, nil
}

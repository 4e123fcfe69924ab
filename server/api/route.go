package api

import (
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// target is what a resource path names.
type target struct {
	res       *resource
	namespace string
	name      string
	sub       string
	// watchPath is true for the legacy /watch/ paths.
	watchPath bool
}

// serveAPI handles everything under /api and /apis.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, path string) {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	var gv schema.GroupVersion
	var rest []string
	switch {
	case segs[0] == "api" && len(segs) == 1:
		s.serveCoreVersions(w, r)
		return
	case segs[0] == "api":
		gv, rest = schema.GroupVersion{Version: segs[1]}, segs[2:]
	case len(segs) == 1:
		s.serveGroupList(w, r)
		return
	case len(segs) == 2:
		s.serveGroup(w, r, segs[1])
		return
	default:
		gv, rest = schema.GroupVersion{Group: segs[1], Version: segs[2]}, segs[3:]
	}
	if gv == crdGV && len(rest) == 1 && rest[0] == "customresourcedefinitions" && s.resources[gv] == nil {
		s.serveNoCRDs(w, r)
		return
	}
	if s.resources[gv] == nil {
		s.writeError(w, r, errNotServed(), emptyGR, "")
		return
	}
	if len(rest) == 0 {
		s.serveResourceList(w, r, gv)
		return
	}
	t, ok := s.parseTarget(gv, rest)
	if !ok {
		s.writeError(w, r, errNotServed(), emptyGR, "")
		return
	}
	s.serveResource(w, r, t)
}

// parseTarget reads [watch/][namespaces/<ns>/]<resource>[/<name>[/<sub>]].
func (s *Server) parseTarget(gv schema.GroupVersion, segs []string) (target, bool) {
	var t target
	for _, seg := range segs {
		if seg == "" {
			return t, false
		}
	}
	if segs[0] == "watch" {
		t.watchPath, segs = true, segs[1:]
		if len(segs) == 0 {
			return t, false
		}
	}
	if segs[0] == "namespaces" && len(segs) >= 3 && !(len(segs) == 3 && s.isNamespaceSub(gv, segs[2])) {
		t.namespace, segs = segs[1], segs[2:]
		t.res = s.lookup(gv, segs[0])
		if t.res == nil || !t.res.Namespaced {
			return t, false
		}
	} else {
		t.res = s.lookup(gv, segs[0])
		if t.res == nil || (t.res.Namespaced && len(segs) > 1) {
			return t, false
		}
	}
	switch len(segs) {
	case 1:
	case 2:
		t.name = segs[1]
	case 3:
		t.name, t.sub = segs[1], segs[2]
		if !t.res.subs.Has(t.sub) {
			return t, false
		}
	default:
		return t, false
	}
	if t.watchPath && t.sub != "" {
		return t, false
	}
	return t, true
}

func (s *Server) isNamespaceSub(gv schema.GroupVersion, sub string) bool {
	ns := s.lookup(gv, "namespaces")
	return ns != nil && !ns.Namespaced && ns.subs.Has(sub)
}

// serveResource dispatches on method, name and subresource.
func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, t target) {
	verb, handler := s.route(r, t)
	if handler == nil {
		s.writeError(w, r, apierrors.NewMethodNotSupported(t.res.gr, strings.ToLower(r.Method)), t.res.gr, t.name)
		return
	}
	if !t.res.verbs.Has(verb) && t.sub == "" {
		s.writeError(w, r, apierrors.NewMethodNotSupported(t.res.gr, verb), t.res.gr, t.name)
		return
	}
	handler(w, r, t)
}

type handlerFunc func(http.ResponseWriter, *http.Request, target)

// route names the verb (as discovery lists it) and the handler of a
// request; a nil handler means the method is not allowed there.
func (s *Server) route(r *http.Request, t target) (string, handlerFunc) {
	m := r.Method
	switch {
	case t.watchPath:
		if m == http.MethodGet {
			return "watch", s.serveWatch
		}
	case t.name == "":
		switch m {
		case http.MethodGet:
			if isTrue(r.URL.Query().Get("watch")) {
				return "watch", s.serveWatch
			}
			return "list", s.serveList
		case http.MethodPost:
			if t.res.Namespaced && t.namespace == "" {
				return "create", nil
			}
			return "create", s.serveCreate
		case http.MethodDelete:
			if t.res.Namespaced && t.namespace == "" {
				return "deletecollection", nil
			}
			return "deletecollection", s.serveDeleteCollection
		}
	case t.sub == "":
		switch m {
		case http.MethodGet:
			return "get", s.serveGet
		case http.MethodPut:
			return "update", s.serveUpdate
		case http.MethodPatch:
			return "patch", s.servePatch
		case http.MethodDelete:
			return "delete", s.serveDelete
		}
	case t.sub == "status":
		switch m {
		case http.MethodGet:
			return "get", s.serveGet
		case http.MethodPut:
			return "update", s.serveUpdate
		case http.MethodPatch:
			return "patch", s.servePatch
		}
	case t.sub == "log" && m == http.MethodGet:
		return "get", s.serveLog
	case streamSubresources[t.sub] && m == http.MethodPost:
		return "create", s.serveStream
	case streamSubresources[t.sub] && m == http.MethodGet:
		// WebSocket clients (kubectl ≥ 1.30) upgrade with GET.
		return "get", s.serveStream
	case t.sub == "binding" && m == http.MethodPost:
		return "create", s.serveBinding
	case t.sub == "finalize" && m == http.MethodPut:
		return "update", s.serveUpdate
	}
	return "", nil
}

// isTrue reads a boolean query parameter as Kubernetes does.
func isTrue(v string) bool { return v == "1" || strings.EqualFold(v, "true") }

package api

import (
	"net/http"

	"k8s.io/apimachinery/pkg/runtime"
)

// serveGet answers GET of one object (and of its status subresource,
// which is the whole object, as in Kubernetes).
func (s *Server) serveGet(w http.ResponseWriter, r *http.Request, t target) {
	obj, _, err := s.getObject(r.Context(), t.res, t.namespace, t.name)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	s.respond(w, r, t.res, http.StatusOK, obj)
}

// respond writes one object in the form the client negotiated: the object,
// a one-row Table, or its PartialObjectMetadata.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, res *resource, code int, obj runtime.Object) {
	out, ok := negotiate(r.Header.Get("Accept"), capabilities{table: true, partial: true})
	if !ok {
		s.writeError(w, r, errNotAcceptable(r.Header.Get("Accept")), res.gr, "")
		return
	}
	switch out.kind {
	case outTable:
		opts, err := parseTableOptions(r.URL.Query())
		if err != nil {
			s.writeError(w, r, err, res.gr, "")
			return
		}
		table, err := res.toTable([]runtime.Object{obj}, out.version, opts, true)
		if err != nil {
			s.writeError(w, r, err, res.gr, "")
			return
		}
		table.ResourceVersion = accessor(obj).GetResourceVersion()
		s.writeOut(w, out, code, table, false)
	case outPartial:
		s.writeOut(w, out, code, partialMeta(obj, out.version), false)
	default:
		obj.GetObjectKind().SetGroupVersionKind(res.gvk)
		s.writeOut(w, out, code, obj, false)
	}
}

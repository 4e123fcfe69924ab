package api

import (
	"net/http"

	"k8s.io/apimachinery/pkg/runtime"

	"kedge.dev/kedge/raftstore"
)

// serveGet answers GET of one object (and of its status subresource,
// which is the whole object, as in Kubernetes).
// A value this server encoded is answered from its stored bytes.
func (s *Server) serveGet(w http.ResponseWriter, r *http.Request, t target) {
	kv, err := s.getStored(r.Context(), t.res, t.namespace, t.name)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	if s.encoded.has(kv) {
		s.respondStored(w, r, t.res, http.StatusOK, nil, &kv)
		return
	}
	obj, err := t.res.decode(kv)
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

// respondStored answers a write: with obj, or when obj is nil with the
// object the store holds in kv. In the plain JSON form the stored bytes are
// sent with the resourceVersion spliced in, which is byte for byte what
// decoding and encoding them again would write, without that work.
func (s *Server) respondStored(w http.ResponseWriter, r *http.Request, res *resource, code int, obj runtime.Object, kv *raftstore.KeyValue) {
	if obj == nil {
		if out, ok := negotiate(r.Header.Get("Accept"), capabilities{table: true, partial: true}); ok && out.kind == outObject && !out.yaml {
			if body, ok := withResourceVersion(kv.Value, kv.ModRevision); ok {
				w.Header().Set("Content-Type", out.contentType(false))
				w.WriteHeader(code)
				_, _ = w.Write(append(body, '\n'))
				return
			}
		}
		var err error
		if obj, err = res.decode(*kv); err != nil {
			s.writeError(w, r, err, res.gr, "")
			return
		}
	}
	s.respond(w, r, res, code, obj)
}

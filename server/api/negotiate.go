package api

import (
	"encoding/json"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// outKind is the shape of a response body.
type outKind int

const (
	outObject    outKind = iota // the object or list itself
	outTable                    // meta.k8s.io Table (kubectl get)
	outPartial                  // meta.k8s.io PartialObjectMetadata(List)
	outDiscovery                // apidiscovery.k8s.io APIGroupDiscoveryList
)

// output is the result of content negotiation.
type output struct {
	kind outKind
	yaml bool
	// version of meta.k8s.io (v1, v1beta1) or apidiscovery.k8s.io (v2,
	// v2beta1) for the transformed kinds.
	version string
}

// capabilities says which transformed kinds an endpoint can produce.
type capabilities struct{ table, partial, discovery bool }

// negotiate picks the first clause of an Accept header (by q, then order)
// that can be served. Protobuf and CBOR are never served: clients that list
// JSON as well (client-go, kubectl) fall back to it.
func negotiate(accept string, caps capabilities) (output, bool) {
	if strings.TrimSpace(accept) == "" {
		return output{}, true
	}
	type clause struct {
		base   string
		params map[string]string
		q      float64
	}
	var clauses []clause
	for _, part := range strings.Split(accept, ",") {
		base, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		if q > 0 {
			clauses = append(clauses, clause{base, params, q})
		}
	}
	sort.SliceStable(clauses, func(i, j int) bool { return clauses[i].q > clauses[j].q })
	for _, c := range clauses {
		var out output
		switch c.base {
		case "application/json", "application/*", "*/*":
		case "application/yaml":
			out.yaml = true
		default:
			continue
		}
		g, v := c.params["g"], c.params["v"]
		switch as := c.params["as"]; {
		case as == "":
			return out, true
		case as == "Table" && caps.table && g == "meta.k8s.io" && (v == "v1" || v == "v1beta1"):
			out.kind, out.version = outTable, v
			return out, true
		case (as == "PartialObjectMetadata" || as == "PartialObjectMetadataList") && caps.partial &&
			g == "meta.k8s.io" && (v == "v1" || v == "v1beta1"):
			out.kind, out.version = outPartial, v
			return out, true
		case as == "APIGroupDiscoveryList" && caps.discovery && !out.yaml &&
			g == "apidiscovery.k8s.io" && (v == "v2" || v == "v2beta1"):
			out.kind, out.version = outDiscovery, v
			return out, true
		}
	}
	return output{}, false
}

// contentType is the Content-Type of a response in the negotiated form.
func (o output) contentType(list bool) string {
	base := "application/json"
	if o.yaml {
		base = "application/yaml"
	}
	switch o.kind {
	case outTable:
		return base + ";as=Table;v=" + o.version + ";g=meta.k8s.io"
	case outPartial:
		as := "PartialObjectMetadata"
		if list {
			as += "List"
		}
		return base + ";as=" + as + ";v=" + o.version + ";g=meta.k8s.io"
	case outDiscovery:
		return base + ";g=apidiscovery.k8s.io;v=" + o.version + ";as=APIGroupDiscoveryList"
	}
	return base
}

// writeJSONObject writes v as JSON with the given content type (default
// application/json).
func (s *Server) writeJSONObject(w http.ResponseWriter, code int, v any, contentType string) {
	data, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encode response", "err", err)
		code = http.StatusInternalServerError
		data = []byte(`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"encoding the response failed","reason":"InternalError","code":500}`)
	}
	if contentType == "" {
		contentType = "application/json"
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(code)
	_, _ = w.Write(append(data, '\n'))
}

// writeOut writes v in the negotiated encoding.
func (s *Server) writeOut(w http.ResponseWriter, out output, code int, v any, list bool) {
	if !out.yaml {
		s.writeJSONObject(w, code, v, out.contentType(list))
		return
	}
	data, err := json.Marshal(v)
	if err == nil {
		data, err = yaml.JSONToYAML(data)
	}
	if err != nil {
		s.log.Error("encode yaml response", "err", err)
		s.writeJSONObject(w, http.StatusInternalServerError, statusFor(err, emptyGR, ""), "")
		return
	}
	w.Header().Set("Content-Type", out.contentType(list))
	w.WriteHeader(code)
	_, _ = w.Write(data)
}

// writeObject negotiates JSON or YAML (no transformations) and writes v.
func (s *Server) writeObject(w http.ResponseWriter, r *http.Request, code int, v any) {
	out, ok := negotiate(r.Header.Get("Accept"), capabilities{})
	if !ok {
		s.writeError(w, r, errNotAcceptable(r.Header.Get("Accept")), emptyGR, "")
		return
	}
	s.writeOut(w, out, code, v, false)
}

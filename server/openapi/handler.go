package openapi

import (
	"bytes"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Media types of the OpenAPI documents, as kube-openapi's handlers name
// them. kubectl asks for the v2 document in protobuf with the "@" spelling;
// the answer always carries the "." spelling.
const (
	mediaJSON            = "application/json"
	mediaV2Proto         = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
	mediaV2ProtoAt       = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
	mediaV3Proto         = "application/com.github.proto-openapi.spec.v3.v1.0+protobuf"
	mediaV3ProtoAt       = "application/com.github.proto-openapi.spec.v3@v1.0+protobuf"
	openAPIV2Path        = "/openapi/v2"
	openAPIV3Path        = "/openapi/v3"
	openAPIV3PathPrefix  = openAPIV3Path + "/"
	immutableCacheMaxAge = "public, immutable"
)

// offer is one representation the client may accept: the media type it
// names, the Content-Type answered, and whether it is the protobuf form.
type offer struct {
	accept, contentType string
	proto               bool
}

var (
	v2Offers = []offer{{mediaJSON, mediaJSON, false}, {mediaV2ProtoAt, mediaV2Proto, true}, {mediaV2Proto, mediaV2Proto, true}}
	v3Offers = []offer{{mediaJSON, mediaJSON, false}, {mediaV3Proto, mediaV3Proto, true}, {mediaV3ProtoAt, mediaV3Proto, true}}
)

// ServeHTTP serves GET and HEAD of /openapi/v2, /openapi/v3 and
// /openapi/v3/<group version path>; mount it at "/openapi/". It answers 404
// for other paths and unknown group versions, 405 for other methods, 406 when
// the Accept header names no form it has, 304 when If-None-Match names the
// current ETag, and, as kube-apiserver does, 301 to the current address when
// a v3 document is asked for with an outdated ?hash= (a matching hash makes
// the answer cacheable for a year: that content never changes).
func (d *Documents) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch p := r.URL.Path; {
	case p == openAPIV2Path:
		d.serve(w, r, d.v2, v2Offers)
	case p == openAPIV3Path || p == openAPIV3PathPrefix:
		d.serve(w, r, d.discovery, []offer{{mediaJSON, mediaJSON, false}})
	case strings.HasPrefix(p, openAPIV3PathPrefix):
		key := strings.TrimPrefix(p, openAPIV3PathPrefix)
		doc, ok := d.v3[key]
		if !ok {
			http.Error(w, "no OpenAPI v3 document for "+key, http.StatusNotFound)
			return
		}
		if hash := r.URL.Query().Get("hash"); hash != "" {
			if hash != doc.etag {
				http.Redirect(w, r, v3URL(key, doc.etag), http.StatusMovedPermanently)
				return
			}
			w.Header().Set("Cache-Control", immutableCacheMaxAge)
			w.Header().Set("Expires", time.Now().AddDate(1, 0, 0).UTC().Format(http.TimeFormat))
		}
		d.serve(w, r, doc, v3Offers)
	default:
		http.NotFound(w, r)
	}
}

// serve answers with the first form of doc the Accept header allows, in the
// header's order of preference.
func (d *Documents) serve(w http.ResponseWriter, r *http.Request, doc *document, offers []offer) {
	w.Header().Add("Vary", "Accept")
	accept := r.Header.Get("Accept")
	if accept == "" {
		accept = "*/*"
	}
	for _, clause := range parseAccept(accept) {
		for _, o := range offers {
			typ, sub, _ := strings.Cut(o.accept, "/")
			if (clause.typ != typ && clause.typ != "*") || (clause.sub != sub && clause.sub != "*") {
				continue
			}
			gz := doc.gz
			if o.proto {
				if gz = doc.protoGz; gz == "" {
					// Only the discovery document lacks a protobuf form, and
					// it offers none.
					continue
				}
			}
			var body io.ReadSeeker = strings.NewReader(gz)
			w.Header().Add("Vary", "Accept-Encoding")
			if acceptsGzip(r.Header.Get("Accept-Encoding")) {
				w.Header().Set("Content-Encoding", "gzip")
			} else {
				b, err := expand(gz)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				body = bytes.NewReader(b)
			}
			w.Header().Set("Content-Type", o.contentType)
			w.Header().Set("Etag", strconv.Quote(doc.etag))
			// ServeContent answers If-None-Match, If-Modified-Since, HEAD
			// and ranges.
			http.ServeContent(w, r, "", d.modTime, body)
			return
		}
	}
	http.Error(w, "not acceptable: the document is served as "+offerList(offers), http.StatusNotAcceptable)
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip: named,
// or "*", with a quality above zero.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "x-gzip" && coding != "*" {
			continue
		}
		k, v, _ := strings.Cut(strings.TrimSpace(params), "=")
		if strings.TrimSpace(k) == "q" {
			if q, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil || q <= 0 {
				continue
			}
		}
		return true
	}
	return false
}

func offerList(offers []offer) string {
	names := make([]string, len(offers))
	for i, o := range offers {
		names[i] = o.accept
	}
	return strings.Join(names, ", ")
}

// acceptClause is one media range of an Accept header.
type acceptClause struct {
	typ, sub string
	q        float64
}

// parseAccept returns the media ranges of an Accept header (RFC 9110
// 12.5.1) most preferred first: by quality, then the more specific range
// first (type/sub before type/* before */*), then in header order. Ranges
// with q=0, or that do not parse, are left out. Media type parameters other
// than q are ignored, as kube-openapi's handlers do.
func parseAccept(header string) []acceptClause {
	var out []acceptClause
	for _, part := range strings.Split(header, ",") {
		fields := strings.Split(part, ";")
		typ, sub, ok := strings.Cut(strings.TrimSpace(fields[0]), "/")
		if !ok || typ == "" || sub == "" {
			continue
		}
		c := acceptClause{typ: typ, sub: sub, q: 1}
		for _, p := range fields[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.TrimSpace(k) == "q" {
				q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || q < 0 || q > 1 {
					q = 0
				}
				c.q = q
			}
		}
		if c.q > 0 {
			out = append(out, c)
		}
	}
	specificity := func(c acceptClause) int {
		switch {
		case c.typ == "*":
			return 0
		case c.sub == "*":
			return 1
		}
		return 2
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].q != out[j].q {
			return out[i].q > out[j].q
		}
		return specificity(out[i]) > specificity(out[j])
	})
	return out
}

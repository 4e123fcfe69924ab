package openapi

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	openapiv3 "github.com/google/gnostic-models/openapiv3"
	"google.golang.org/protobuf/proto"
)

// embedded returns the documents kedge serves.
func embedded(t testing.TB) *Documents {
	t.Helper()
	d, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestHandler(t *testing.T) {
	d := embedded(t)
	v2ETag := strconv.Quote(d.v2.etag)
	v1 := d.v3["api/v1"]
	v1URL := v3URL("api/v1", v1.etag)
	cases := []struct {
		name        string
		method      string
		path        string
		header      map[string]string
		code        int
		contentType string
		etag        string
		location    string
		cacheable   bool
		// gzip: the answer must be gzip-encoded (it is expanded before
		// check); otherwise it must not be.
		gzip bool
		// check inspects the body; nil means the body is not checked.
		check func(t *testing.T, body []byte)
	}{
		{
			name: "v2 JSON by default", path: "/openapi/v2", code: 200, contentType: mediaJSON, etag: v2ETag,
			check: func(t *testing.T, b []byte) { expectPrefix(t, b, `{"swagger":"2.0"`) },
		},
		{
			name: "v2 protobuf as kubectl asks", path: "/openapi/v2", header: map[string]string{"Accept": mediaV2ProtoAt},
			code: 200, contentType: mediaV2Proto, etag: v2ETag,
			check: func(t *testing.T, b []byte) {
				var doc openapiv2.Document
				if err := proto.Unmarshal(b, &doc); err != nil {
					t.Fatalf("unmarshal v2 protobuf: %v", err)
				}
				if doc.Swagger != "2.0" || len(doc.GetPaths().GetPath()) == 0 || len(doc.GetDefinitions().GetAdditionalProperties()) == 0 {
					t.Errorf("v2 protobuf document is empty: swagger %q", doc.Swagger)
				}
			},
		},
		{
			name: "v2 protobuf preferred by q", path: "/openapi/v2",
			header: map[string]string{"Accept": "application/json;q=0.5, " + mediaV2Proto},
			code:   200, contentType: mediaV2Proto,
		},
		{
			name: "v2 gzip for a client that accepts it", path: "/openapi/v2", header: map[string]string{"Accept-Encoding": "gzip"},
			code: 200, contentType: mediaJSON, etag: v2ETag, gzip: true,
			check: func(t *testing.T, b []byte) { expectPrefix(t, b, `{"swagger":"2.0"`) },
		},
		{
			name: "v2 identity when gzip has q=0", path: "/openapi/v2", header: map[string]string{"Accept-Encoding": "gzip;q=0, identity"},
			code: 200, contentType: mediaJSON,
			check: func(t *testing.T, b []byte) { expectPrefix(t, b, `{"swagger":"2.0"`) },
		},
		{
			name: "v2 protobuf gzip", path: "/openapi/v2", header: map[string]string{"Accept": mediaV2ProtoAt, "Accept-Encoding": "deflate, gzip"},
			code: 200, contentType: mediaV2Proto, gzip: true,
			check: func(t *testing.T, b []byte) {
				var doc openapiv2.Document
				if err := proto.Unmarshal(b, &doc); err != nil || doc.Swagger != "2.0" {
					t.Fatalf("unmarshal gzip v2 protobuf: %v (swagger %q)", err, doc.Swagger)
				}
			},
		},
		{name: "v2 not acceptable", path: "/openapi/v2", header: map[string]string{"Accept": "application/xml"}, code: 406},
		{name: "v2 not modified", path: "/openapi/v2", header: map[string]string{"If-None-Match": v2ETag}, code: 304},
		{name: "v2 stale etag", path: "/openapi/v2", header: map[string]string{"If-None-Match": `"0"`}, code: 200, etag: v2ETag},
		{name: "v2 HEAD", method: http.MethodHead, path: "/openapi/v2", code: 200, contentType: mediaJSON,
			check: func(t *testing.T, b []byte) {
				if len(b) != 0 {
					t.Errorf("HEAD answered a body of %d bytes", len(b))
				}
			}},
		{name: "POST refused", method: http.MethodPost, path: "/openapi/v2", code: 405},
		{
			name: "v3 discovery", path: "/openapi/v3", code: 200, contentType: mediaJSON,
			check: func(t *testing.T, b []byte) {
				if !strings.Contains(string(b), `"api/v1":{"serverRelativeURL":"`+v1URL+`"}`) {
					t.Errorf("discovery lacks api/v1 at %s: %s", v1URL, b)
				}
			},
		},
		{
			name: "v3 group version at its hash", path: v1URL, code: 200, contentType: mediaJSON,
			etag: strconv.Quote(v1.etag), cacheable: true,
			check: func(t *testing.T, b []byte) { expectPrefix(t, b, `{"openapi":"3.0.0"`) },
		},
		{name: "v3 without hash", path: "/openapi/v3/api/v1", code: 200, contentType: mediaJSON},
		{name: "v3 outdated hash", path: "/openapi/v3/api/v1?hash=OUTDATED", code: 301, location: v1URL},
		{
			name: "v3 protobuf", path: "/openapi/v3/api/v1", header: map[string]string{"Accept": mediaV3ProtoAt},
			code: 200, contentType: mediaV3Proto,
			check: func(t *testing.T, b []byte) {
				var doc openapiv3.Document
				if err := proto.Unmarshal(b, &doc); err != nil {
					t.Fatalf("unmarshal v3 protobuf: %v", err)
				}
				if doc.Openapi != "3.0.0" || len(doc.GetPaths().GetPath()) == 0 {
					t.Errorf("v3 protobuf document is empty: openapi %q", doc.Openapi)
				}
			},
		},
		{name: "v3 not modified", path: "/openapi/v3/api/v1", header: map[string]string{"If-None-Match": strconv.Quote(v1.etag)}, code: 304},
		{name: "v3 unknown group version", path: "/openapi/v3/apis/unserved.example.com/v1", code: 404},
		{name: "v3 not acceptable", path: "/openapi/v3/api/v1", header: map[string]string{"Accept": "text/html"}, code: 406},
		{name: "unknown path", path: "/openapi/v4", code: 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, tc.path, nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			d.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.code, rec.Body.String())
			}
			if tc.contentType != "" && rec.Header().Get("Content-Type") != tc.contentType {
				t.Errorf("Content-Type %q, want %q", rec.Header().Get("Content-Type"), tc.contentType)
			}
			if tc.etag != "" && rec.Header().Get("Etag") != tc.etag {
				t.Errorf("ETag %q, want %q", rec.Header().Get("Etag"), tc.etag)
			}
			if tc.location != "" && rec.Header().Get("Location") != tc.location {
				t.Errorf("Location %q, want %q", rec.Header().Get("Location"), tc.location)
			}
			if got := rec.Header().Get("Cache-Control") == immutableCacheMaxAge; got != tc.cacheable {
				t.Errorf("Cache-Control %q, cacheable want %v", rec.Header().Get("Cache-Control"), tc.cacheable)
			}
			body := rec.Body.Bytes()
			if enc := rec.Header().Get("Content-Encoding"); (enc == "gzip") != tc.gzip {
				t.Fatalf("Content-Encoding %q, gzip want %v", enc, tc.gzip)
			}
			if tc.gzip && rec.Code == 200 {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("gzip answer: %v", err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatalf("gzip answer: %v", err)
				}
			}
			if tc.check != nil {
				tc.check(t, body)
			}
		})
	}
}

func expectPrefix(t *testing.T, b []byte, prefix string) {
	t.Helper()
	if !strings.HasPrefix(string(b), prefix) {
		t.Errorf("body starts %q, want %q", string(b[:min(len(b), 80)]), prefix)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                         false,
		"gzip":                     true,
		"GZIP":                     true,
		"deflate, gzip;q=1.0":      true,
		"gzip;q=0":                 false,
		"gzip;q=0.0, identity":     false,
		"*":                        true,
		"x-gzip":                   true,
		"br, identity":             false,
		"gzip;q=nonsense, br":      false,
		"identity;q=0, gzip;q=0.5": true,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}

func TestParseAccept(t *testing.T) {
	cases := []struct {
		header string
		want   []string // type/sub in order of preference
	}{
		{"application/json", []string{"application/json"}},
		{"application/json, */*", []string{"application/json", "*/*"}},
		{"*/*, application/json", []string{"application/json", "*/*"}},
		{"application/json;q=0.5, " + mediaV2ProtoAt, []string{mediaV2ProtoAt, "application/json"}},
		{"application/*;q=0.9, application/json;q=0.9", []string{"application/json", "application/*"}},
		{"text/html;level=1, application/json", []string{"text/html", "application/json"}},
		{"application/json;q=0, text/plain", []string{"text/plain"}},
		{"application/json;q=bogus, text/plain", []string{"text/plain"}},
		{"nonsense, /json, application/", nil},
		{"", nil},
	}
	for _, tc := range cases {
		var got []string
		for _, c := range parseAccept(tc.header) {
			got = append(got, c.typ+"/"+c.sub)
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("parseAccept(%q) = %q, want %q", tc.header, got, tc.want)
		}
	}
}

// TestBundle round-trips documents through a bundle, and checks that a
// bundle that does not fit its data is refused.
func TestBundle(t *testing.T) {
	d, err := New(Source{JSON: []byte(`{"swagger":"2.0"}`), Proto: []byte{1, 2, 3}},
		map[string]Source{"api/v1": {JSON: []byte(`{"openapi":"3.0.0"}`)}, "version": {JSON: []byte(`{}`), Proto: []byte{4}}})
	if err != nil {
		t.Fatal(err)
	}
	index, data, err := d.MarshalBundle()
	if err != nil {
		t.Fatal(err)
	}
	back, err := LoadBundle(string(index), string(data))
	if err != nil {
		t.Fatal(err)
	}
	index2, data2, err := back.MarshalBundle()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(index, index2) || !bytes.Equal(data, data2) {
		t.Errorf("a loaded bundle marshals differently:\n%s\n%s", index, index2)
	}
	// api/v1 has no protobuf form: asking only for it is not acceptable.
	req := httptest.NewRequest(http.MethodGet, "/openapi/v3/api/v1", nil)
	req.Header.Set("Accept", mediaV3Proto)
	rec := httptest.NewRecorder()
	back.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotAcceptable {
		t.Errorf("protobuf of a document without one: %d, want 406", rec.Code)
	}
	req = httptest.NewRequest(http.MethodGet, "/openapi/v3/version", nil)
	req.Header.Set("Accept", mediaV3Proto)
	rec = httptest.NewRecorder()
	back.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Body.String() != "\x04" {
		t.Errorf("protobuf of version: %d %q", rec.Code, rec.Body.String())
	}

	for name, tc := range map[string]struct{ index, data string }{
		"truncated data":  {string(index), string(data[:len(data)-1])},
		"not JSON":        {"{", string(data)},
		"negative offset": {strings.Replace(string(index), `"offset": 0`, `"offset": -1`, 1), string(data)},
	} {
		if _, err := LoadBundle(tc.index, tc.data); err == nil {
			t.Errorf("%s: LoadBundle accepted it", name)
		}
	}
	if _, err := New(Source{}, nil); err == nil {
		t.Error("New accepted a v2 document without JSON")
	}
}

package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// benchEventBody is the Event test/e2e's BenchmarkStore writes: a 1 KiB
// message, resourceVersion empty (a blind put) or the one read (a CAS).
func benchEventBody(name, message, rv string) string {
	return `{"apiVersion":"v1","kind":"Event","metadata":{"name":"` + name + `","namespace":"default","resourceVersion":"` + rv + `"},` +
		`"involvedObject":{"kind":"Pod","namespace":"default","name":"bench"},"reason":"Bench","type":"Normal","message":"` + message + `"}`
}

// serveDirect runs one request through the handler without a network, so
// the benchmark measures the API server's own work (routing, auth,
// decoding, validation, encoding) over the in-memory store.
func serveDirect(b *testing.B, srv *Server, method, path, body string, want int) []byte {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s: got %d, want %d: %s", method, path, rec.Code, want, rec.Body.Bytes())
	}
	return rec.Body.Bytes()
}

// BenchmarkEventWrite measures the API server's CPU per write of the
// store benchmark: put is a PUT without resourceVersion, cas a GET and a
// PUT with the resourceVersion read.
func BenchmarkEventWrite(b *testing.B) {
	pad := strings.Repeat("x", 1024)
	const path = "/api/v1/namespaces/default/events/bench-0"
	for _, op := range []string{"put", "cas"} {
		b.Run(op, func(b *testing.B) {
			env := newTestEnv(b)
			env.createNamespace("default")
			serveDirect(b, env.srv, "POST", "/api/v1/namespaces/default/events", benchEventBody("bench-0", "init", ""), http.StatusCreated)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				seq := strconv.Itoa(i) + "-"
				msg := seq + pad[len(seq):]
				rv := ""
				if op == "cas" {
					var o struct {
						Metadata struct {
							ResourceVersion string `json:"resourceVersion"`
						} `json:"metadata"`
					}
					got := serveDirect(b, env.srv, "GET", path, "", http.StatusOK)
					if err := json.Unmarshal(got, &o); err != nil {
						b.Fatal(err)
					}
					rv = o.Metadata.ResourceVersion
				}
				serveDirect(b, env.srv, "PUT", path, benchEventBody("bench-0", msg, rv), http.StatusOK)
			}
		})
	}
}

package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"kedge.dev/kedge/server/openapi"
)

// TestEmbeddedBundleIsCurrent builds the documents of the served resources
// and compares every form of every document with what the server embeds,
// expanded: a change to the registry, the builder or the upstream types
// must come with `go generate ./server/openapi`. (Comparing the expanded
// forms keeps the test independent of the compressor's exact output.)
func TestEmbeddedBundleIsCurrent(t *testing.T) {
	index, data, err := bundle()
	if err != nil {
		t.Fatal(err)
	}
	built, err := openapi.LoadBundle(string(index), string(data))
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := openapi.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	serve := func(d *openapi.Documents, path, accept string) (string, string) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		d.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s (%s): %d %s", path, accept, rec.Code, rec.Body.String())
		}
		return rec.Body.String(), rec.Header().Get("Etag")
	}
	discovery, _ := serve(built, "/openapi/v3", "application/json")
	var paths struct {
		Paths map[string]struct {
			ServerRelativeURL string `json:"serverRelativeURL"`
		} `json:"paths"`
	}
	if err := json.Unmarshal([]byte(discovery), &paths); err != nil || len(paths.Paths) == 0 {
		t.Fatalf("v3 discovery of the built documents: %v: %s", err, discovery)
	}
	type form struct{ path, accept string }
	forms := []form{
		{"/openapi/v2", "application/json"},
		{"/openapi/v2", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"},
		{"/openapi/v3", "application/json"},
	}
	for key := range paths.Paths {
		forms = append(forms,
			form{"/openapi/v3/" + key, "application/json"},
			form{"/openapi/v3/" + key, "application/com.github.proto-openapi.spec.v3@v1.0+protobuf"})
	}
	stale := false
	for _, f := range forms {
		want, wantTag := serve(built, f.path, f.accept)
		got, gotTag := serve(shipped, f.path, f.accept)
		if got != want || gotTag != wantTag {
			t.Errorf("%s (%s): the embedded form differs from a build (%d vs %d bytes)", f.path, f.accept, len(got), len(want))
			stale = true
		}
	}
	if stale {
		t.Log("run: go generate ./server/openapi")
	}
}

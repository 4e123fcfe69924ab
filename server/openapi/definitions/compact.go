//go:build ignore

// compact writes GetOpenAPIDefinitions as gzipped JSON to the file named by
// its argument: a map from Go type name to {"schema", "dependencies"}, with
// every reference holding the Go type name it points to. Package builder
// embeds the file and turns the names back into references (see
// server/openapi/builder/definitions.go).
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/kube-openapi/pkg/validation/spec"

	"kedge.dev/kedge/server/openapi/definitions"
)

type stored struct {
	Schema       spec.Schema `json:"schema"`
	Dependencies []string    `json:"dependencies,omitempty"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run compact.go OUTPUT.json.gz")
		os.Exit(2)
	}
	defs := definitions.GetOpenAPIDefinitions(func(name string) spec.Ref { return spec.MustCreateRef(name) })
	out := make(map[string]stored, len(defs))
	for name, d := range defs {
		out[name] = stored{Schema: d.Schema, Dependencies: d.Dependencies}
	}
	j, err := json.Marshal(out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "encode definitions:", err)
		os.Exit(1)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(j); err != nil {
		fmt.Fprintln(os.Stderr, "compress definitions:", err)
		os.Exit(1)
	}
	if err := zw.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "compress definitions:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(os.Args[1], buf.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "write definitions:", err)
		os.Exit(1)
	}
}

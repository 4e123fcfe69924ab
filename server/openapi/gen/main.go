// Command gen writes the OpenAPI documents of the resources kedge serves
// (registry.Core) as the bundle package openapi embeds:
// zz_generated.openapi.json and zz_generated.openapi.bin in the directory
// it runs in. `go generate ./server/openapi` runs it; a test in this
// directory fails when the committed bundle differs from what it would
// write.
//
// The documents are built here, at build time, rather than by the server
// at start: kube-openapi's builders, gnostic and the protobuf runtime they
// need added ~5 MB to the binary that every kedge process maps, and
// building every form takes ~0.3 s and allocates ~80 MB (measured on the
// development VM), work the server did at each start (the protobuf forms
// on their first request).
package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"kedge.dev/kedge/server/openapi/builder"
	"kedge.dev/kedge/server/registry"
)

func main() {
	log.SetFlags(0)
	dir := "."
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if err := write(dir); err != nil {
		log.Fatalf("openapi gen: %v", err)
	}
}

// config describes the served resources to the builder.
func config(resources []registry.Resource) builder.Config {
	c := builder.DefaultConfig()
	c.Version = registry.KubernetesVersion
	for _, r := range resources {
		c.Resources = append(c.Resources, builder.Resource{
			Group: r.Group, Version: r.Version, Kind: r.Kind, Plural: r.Resource,
			Namespaced: r.Namespaced, Verbs: r.Verbs, Subresources: r.Subresources,
			DeleteReturnsObject: r.Kind == "Pod",
		})
	}
	return c
}

// bundle builds the documents and returns them as a bundle.
func bundle() (index, data []byte, err error) {
	docs, err := builder.Build(config(registry.Core()))
	if err != nil {
		return nil, nil, err
	}
	return docs.MarshalBundle()
}

func write(dir string) error {
	index, data, err := bundle()
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{"zz_generated.openapi.json": index, "zz_generated.openapi.bin": data} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

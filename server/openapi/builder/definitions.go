package builder

import (
	"bytes"
	"compress/gzip"
	_ "embed" // for the embedded definitions
	"encoding/json"
	"fmt"

	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/schemamutation"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// compactDefinitions is GetOpenAPIDefinitions of package definitions as
// gzipped JSON, written by definitions/compact.go: the generated Go code
// costs ~1.1 MB of binary for core/v1 and meta/v1 (and more with each API
// group), this ~100 KB. References hold the Go type name they
// point to.
//
//go:embed zz_generated.definitions.json.gz
var compactDefinitions []byte

// storedDefinition is one entry of compactDefinitions.
type storedDefinition struct {
	Schema       spec.Schema `json:"schema"`
	Dependencies []string    `json:"dependencies,omitempty"`
}

// definitionSet is the decoded definitions by Go type name
// ("k8s.io/api/core/v1.Pod"), references still holding Go type names.
// It is read-only once loaded.
type definitionSet map[string]storedDefinition

// loadDefinitions decodes the embedded definitions.
func loadDefinitions() (definitionSet, error) {
	zr, err := gzip.NewReader(bytes.NewReader(compactDefinitions))
	if err != nil {
		return nil, fmt.Errorf("open embedded openapi definitions: %w", err)
	}
	var set definitionSet
	if err := json.NewDecoder(zr).Decode(&set); err != nil {
		return nil, fmt.Errorf("decode embedded openapi definitions: %w", err)
	}
	// The v2 form of a type whose v3 schema v2 cannot express (Quantity,
	// IntOrString: a oneOf) rides in an extension that the v2 builder
	// expects as a spec.Schema value; JSON decoding left a map.
	for name, d := range set {
		v, ok := d.Schema.Extensions[common.ExtensionV2Schema]
		if !ok {
			continue
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("re-encode v2 schema of %s: %w", name, err)
		}
		var v2 spec.Schema
		if err := json.Unmarshal(raw, &v2); err != nil {
			return nil, fmt.Errorf("decode v2 schema of %s: %w", name, err)
		}
		d.Schema.Extensions[common.ExtensionV2Schema] = v2
	}
	return set, nil
}

// withRefs returns the definitions in the form GetOpenAPIDefinitions gives
// them, every reference made by ref from the Go type name it holds. The set
// itself is not modified: schemamutation copies what it changes.
func (s definitionSet) withRefs(ref common.ReferenceCallback) map[string]common.OpenAPIDefinition {
	walker := &schemamutation.Walker{
		SchemaCallback: schemamutation.SchemaCallBackNoop,
		RefCallback: func(r *spec.Ref) *spec.Ref {
			name := r.String()
			if name == "" {
				return r
			}
			out := ref(name)
			return &out
		},
	}
	out := make(map[string]common.OpenAPIDefinition, len(s))
	for name, d := range s {
		schema := *walker.WalkSchema(&d.Schema)
		// The builders write the x-kubernetes-group-version-kind extension
		// into, and delete the v2 schema from, the top-level extensions:
		// each caller gets its own map.
		if schema.Extensions != nil {
			ext := make(spec.Extensions, len(schema.Extensions))
			for k, v := range schema.Extensions {
				ext[k] = v
			}
			if v2, ok := ext[common.ExtensionV2Schema].(spec.Schema); ok {
				ext[common.ExtensionV2Schema] = *walker.WalkSchema(&v2)
			}
			schema.Extensions = ext
		}
		out[name] = common.OpenAPIDefinition{Schema: schema, Dependencies: d.Dependencies}
	}
	return out
}

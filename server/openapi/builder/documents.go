package builder

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	openapiv3 "github.com/google/gnostic-models/openapiv3"
	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	v2builder "k8s.io/kube-openapi/pkg/builder"
	"k8s.io/kube-openapi/pkg/builder3"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/schemamutation"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/util"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"kedge.dev/kedge/server/openapi"
)

// v2ToProto and v3ToProto convert a JSON document to gnostic's protobuf
// messages, as kube-openapi's handlers do.
func v2ToProto(j []byte) ([]byte, error) {
	doc, err := openapiv2.ParseDocument(j)
	if err != nil {
		return nil, fmt.Errorf("parse openapi v2 document: %w", err)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(doc)
}

func v3ToProto(j []byte) ([]byte, error) {
	doc, err := openapiv3.ParseDocument(j)
	if err != nil {
		return nil, fmt.Errorf("parse openapi v3 document: %w", err)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(doc)
}

// Build validates cfg and builds the OpenAPI v2 document and one v3
// document per group version (plus the discovery endpoints' documents), in
// JSON and in protobuf. Errors wrap ErrInvalidConfig when cfg is at fault
// (an unknown verb or subresource, or a kind without a generated
// definition).
func Build(cfg Config) (*openapi.Documents, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	defs, err := loadDefinitions()
	if err != nil {
		return nil, err
	}
	if err := checkDefinitions(cfg, defs); err != nil {
		return nil, err
	}
	names := definitionNamer(cfg)
	// The v3 builder takes the definitions ready-made, so they are made once
	// (with v3 references) for every v3 document.
	v3Defs := defs.withRefs(func(name string) spec.Ref {
		n, _ := names(name)
		return spec.MustCreateRef("#/components/schemas/" + common.EscapeJsonPointer(n))
	})
	containers := newRouteBuilder(cfg).containers()
	routeContainers := make([]common.RouteContainer, len(containers))
	for i, c := range containers {
		routeContainers[i] = c
	}
	info := &spec.Info{InfoProps: spec.InfoProps{Title: cfg.Title, Version: cfg.Version}}

	v2, err := buildV2(routeContainers, info, names, defs)
	if err != nil {
		return nil, err
	}
	v3 := map[string]openapi.Source{}
	for _, c := range containers {
		key := strings.TrimPrefix(c.root, "/")
		if v3[key], err = buildV3(c, info, names, v3Defs); err != nil {
			return nil, fmt.Errorf("build openapi v3 document of %s: %w", key, err)
		}
	}
	return openapi.New(v2, v3)
}

func buildV2(containers []common.RouteContainer, info *spec.Info, names func(string) (string, spec.Extensions), defs definitionSet) (openapi.Source, error) {
	sw, err := v2builder.BuildOpenAPISpecFromRoutes(containers, &common.Config{
		ProtocolList:                   []string{"https"},
		Info:                           info,
		DefaultResponse:                &spec.Response{ResponseProps: spec.ResponseProps{Description: "Default Response."}},
		CommonResponses:                map[int]spec.Response{401: {ResponseProps: spec.ResponseProps{Description: "Unauthorized"}}},
		GetDefinitions:                 defs.withRefs,
		GetOperationIDAndTagsFromRoute: operationIDAndTags,
		GetDefinitionName:              names,
		SecurityDefinitions: &spec.SecurityDefinitions{"BearerToken": &spec.SecurityScheme{SecuritySchemeProps: spec.SecuritySchemeProps{
			Type: "apiKey", Name: "authorization", In: "header", Description: "Bearer Token authentication",
		}}},
		DefaultSecurity: []map[string][]string{{"BearerToken": {}}},
	})
	if err != nil {
		return openapi.Source{}, fmt.Errorf("build openapi v2 document: %w", err)
	}
	// kube-apiserver drops defaults from the v2 document (its clients do not
	// use them; v3 keeps them).
	sw.Definitions = pruneDefaults(sw.Definitions)
	j, err := json.Marshal(sw)
	if err != nil {
		return openapi.Source{}, fmt.Errorf("encode openapi v2 document: %w", err)
	}
	pb, err := v2ToProto(j)
	if err != nil {
		return openapi.Source{}, err
	}
	return openapi.Source{JSON: j, Proto: pb}, nil
}

func buildV3(c *container, info *spec.Info, names func(string) (string, spec.Extensions), defs map[string]common.OpenAPIDefinition) (openapi.Source, error) {
	doc, err := builder3.BuildOpenAPISpecFromRoutes([]common.RouteContainer{c}, &common.OpenAPIV3Config{
		Info:                           info,
		DefaultResponse:                &spec3.Response{ResponseProps: spec3.ResponseProps{Description: "Default Response."}},
		CommonResponses:                map[int]*spec3.Response{401: {ResponseProps: spec3.ResponseProps{Description: "Unauthorized"}}},
		Definitions:                    defs,
		GetOperationIDAndTagsFromRoute: operationIDAndTags,
		GetDefinitionName:              names,
		SecuritySchemes: spec3.SecuritySchemes{"BearerToken": &spec3.SecurityScheme{SecuritySchemeProps: spec3.SecuritySchemeProps{
			Type: "apiKey", Name: "authorization", In: "header", Description: "Bearer Token authentication",
		}}},
	})
	if err != nil {
		return openapi.Source{}, err
	}
	doc.SecurityRequirement = []map[string][]string{{"BearerToken": {}}}
	j, err := json.Marshal(doc)
	if err != nil {
		return openapi.Source{}, fmt.Errorf("encode: %w", err)
	}
	pb, err := v3ToProto(j)
	if err != nil {
		return openapi.Source{}, err
	}
	return openapi.Source{JSON: j, Proto: pb}, nil
}

// pruneDefaults returns the definitions without any default value, as
// kube-openapi's handler.PruneDefaults does for kube-apiserver's v2
// document; the input is not modified.
func pruneDefaults(defs spec.Definitions) spec.Definitions {
	walker := &schemamutation.Walker{
		RefCallback: schemamutation.RefCallbackNoop,
		SchemaCallback: func(s *spec.Schema) *spec.Schema {
			if s.Default == nil {
				return s
			}
			c := *s
			c.Default = nil
			return &c
		},
	}
	out := make(spec.Definitions, len(defs))
	for name, d := range defs {
		out[name] = *walker.WalkSchema(&d)
	}
	return out
}

// Kinds every served group version registers from metav1, as
// metav1.AddToGroupVersion does, and the unversioned kinds of core v1.
var (
	perGroupVersionMetaKinds = []string{"WatchEvent", "ListOptions", "GetOptions", "DeleteOptions", "CreateOptions", "UpdateOptions", "PatchOptions"}
	unversionedMetaKinds     = []string{"Status", "APIVersions", "APIGroupList", "APIGroup", "APIResourceList"}
)

// definitionNamer returns common.Config.GetDefinitionName: the REST-friendly
// name kube-apiserver uses ("k8s.io/api/core/v1.Pod" becomes
// "io.k8s.api.core.v1.Pod") and, for types that are kinds, the
// x-kubernetes-group-version-kind extension listing their kinds sorted by
// group, version and kind, as k8s.io/apiserver's DefinitionNamer builds it
// from the scheme. The kinds are those of the served resources (the kind, its
// list and its subresources' kinds) and the metav1 kinds each served group
// version registers.
func definitionNamer(cfg Config) func(string) (string, spec.Extensions) {
	kinds := map[string]map[metav1.GroupVersionKind]bool{}
	add := func(typ string, gvk metav1.GroupVersionKind) {
		if kinds[typ] == nil {
			kinds[typ] = map[metav1.GroupVersionKind]bool{}
		}
		kinds[typ][gvk] = true
	}
	for _, r := range cfg.Resources {
		gvk := func(kind string) metav1.GroupVersionKind {
			return metav1.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: kind}
		}
		add(r.typeName(r.Kind), gvk(r.Kind))
		add(r.typeName(r.Kind+"List"), gvk(r.Kind+"List"))
		for _, s := range r.Subresources {
			if k := subresourceTable[s].kind; k != "" {
				add(r.typeName(k), gvk(k))
			}
		}
		for _, k := range perGroupVersionMetaKinds {
			add(metaV1+k, gvk(k))
		}
	}
	for _, k := range unversionedMetaKinds {
		add(metaV1+k, metav1.GroupVersionKind{Version: "v1", Kind: k})
	}
	sorted := make(map[string][]metav1.GroupVersionKind, len(kinds))
	for typ, set := range kinds {
		list := make([]metav1.GroupVersionKind, 0, len(set))
		for gvk := range set {
			list = append(list, gvk)
		}
		sort.Slice(list, func(i, j int) bool {
			a, b := list[i], list[j]
			if a.Group != b.Group {
				return a.Group < b.Group
			}
			if a.Version != b.Version {
				return a.Version < b.Version
			}
			return a.Kind < b.Kind
		})
		sorted[typ] = list
	}
	return func(name string) (string, spec.Extensions) {
		if gvks, ok := sorted[name]; ok {
			return util.ToRESTFriendlyName(name), spec.Extensions{extensionGVK: gvks}
		}
		return util.ToRESTFriendlyName(name), nil
	}
}

// checkDefinitions makes sure every kind the routes name has a generated
// definition, so a missing package in definitions/gen.go is reported as such rather
// than as a builder error.
func checkDefinitions(cfg Config, defs definitionSet) error {
	for _, r := range cfg.Resources {
		need := []string{r.Kind}
		if r.has(VerbList) {
			need = append(need, r.Kind+"List")
		}
		for _, s := range r.Subresources {
			if k := subresourceTable[s].kind; k != "" {
				need = append(need, k)
			}
		}
		for _, k := range need {
			if _, ok := defs[r.typeName(k)]; !ok {
				return fmt.Errorf("%w: no generated OpenAPI definition for %s (resource %s): add package %s to the go:generate line in server/openapi/definitions/gen.go and run go generate ./server/openapi/definitions",
					ErrInvalidConfig, r.typeName(k), r.Plural, r.goPackage())
			}
		}
	}
	return nil
}

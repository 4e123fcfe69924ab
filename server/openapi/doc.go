// Package openapi builds and serves the OpenAPI documents kubectl reads to
// explain kinds, validate manifests and choose how to patch:
//
//   - /openapi/v2: one Swagger 2.0 document for every served resource, in
//     JSON or in the protobuf form kubectl asks for
//     (application/com.github.proto-openapi.spec.v2@v1.0+protobuf);
//   - /openapi/v3: the discovery document listing one OpenAPI 3.0 document
//     per group version, each with a ?hash= of its content;
//   - /openapi/v3/api/v1, /openapi/v3/apis/<group>/<version> (and api, apis,
//     apis/<group>, version for the discovery endpoints): those documents,
//     in JSON or protobuf.
//
// Nothing here is written by hand. The schemas are those kube-openapi's
// openapi-gen generates from the upstream Go types into package definitions
// (see definitions/gen.go), carried into the binary as the gzipped JSON
// zz_generated.definitions.json.gz rather than as compiled Go (~100 KB
// instead of ~1.1 MB for core/v1). The paths come from the served resources:
// for each resource, verb and subresource this package describes the route
// the way k8s.io/apiserver's installer does (same operation IDs such as
// patchCoreV1NamespacedPod, same query parameters taken by reflection from
// metav1.ListOptions, CreateOptions, PatchOptions... with their upstream
// descriptions, same x-kubernetes-group-version-kind and x-kubernetes-action
// extensions) and hands the routes to kube-openapi's builders, which emit the
// documents exactly as kube-apiserver's. Definition names are Kubernetes'
// (io.k8s.api.core.v1.Pod) and carry x-kubernetes-group-version-kind.
//
// Everything is built and serialized once, in New; serving is a lookup of
// immutable bytes, safe for concurrent use. Responses carry an ETag (the
// SHA-512 of the JSON form, shared by the protobuf form through Vary: Accept,
// as kube-apiserver does) and honour If-None-Match. Compression is left to
// the server's HTTP middleware.
//
// Adding a kind is one more Resource in Config.Resources; a kind of a new API
// group also needs that group's package added to the go:generate line in
// definitions/gen.go (New says so when it is missing).
package openapi

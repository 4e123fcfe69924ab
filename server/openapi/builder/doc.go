// Package builder builds the OpenAPI documents kubectl reads to
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
// (see ../definitions/gen.go), read from their gzipped JSON form
// zz_generated.definitions.json.gz. The paths come from the served resources:
// for each resource, verb and subresource this package describes the route
// the way k8s.io/apiserver's installer does (same operation IDs such as
// patchCoreV1NamespacedPod, same query parameters taken by reflection from
// metav1.ListOptions, CreateOptions, PatchOptions... with their upstream
// descriptions, same x-kubernetes-group-version-kind and x-kubernetes-action
// extensions) and hands the routes to kube-openapi's builders, which emit the
// documents exactly as kube-apiserver's. Definition names are Kubernetes'
// (io.k8s.api.core.v1.Pod) and carry x-kubernetes-group-version-kind.
//
// Build makes every document in JSON and in gnostic's protobuf form and
// returns them as package openapi's Documents, which serve them. kedge runs
// Build at build time, not at start: ../gen writes the documents of the
// served resources as the bundle package openapi embeds, so the kedge binary
// links neither this package nor kube-openapi, gnostic and the protobuf
// runtime (~5 MB of the binary).
//
// Adding a kind is one more Resource in Config.Resources (../gen derives
// them from registry.Core) and `go generate ./server/openapi`; a kind of a
// new API group also needs that group's package added to the go:generate line
// in ../definitions/gen.go (Build says so when it is missing).
package builder

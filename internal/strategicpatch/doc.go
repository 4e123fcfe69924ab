// Package strategicpatch applies and creates Kubernetes strategic merge
// patches for Go types, copied from k8s.io/apimachinery v0.34.2's
// pkg/util/strategicpatch: patch.go and errors.go unchanged, meta.go without
// the patch metadata read from OpenAPI schemas (PatchMetaFromOpenAPI and
// PatchMetaFromOpenAPIV3), which kedge does not use: its API server knows
// every served type as a Go struct and reads the struct tags.
//
// Upstream's package imports k8s.io/kube-openapi for those two, and through
// it gnostic and google.golang.org/protobuf, whose package initialisation
// alone keeps their code and descriptors in any binary that links them.
// kedge builds its OpenAPI documents at build time, so without this import
// none of it is in the kedge binary (with the build-time documents, 28.6
// -> 23.5 MB). patch_test.go checks this copy against
// upstream on the patches kubectl sends.
package strategicpatch

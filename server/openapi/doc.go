// Package openapi serves the OpenAPI documents kubectl reads to explain
// kinds, validate manifests and choose how to patch:
//
//   - /openapi/v2: one Swagger 2.0 document for every served resource, in
//     JSON or in the protobuf form kubectl asks for
//     (application/com.github.proto-openapi.spec.v2@v1.0+protobuf);
//   - /openapi/v3: the discovery document listing one OpenAPI 3.0 document
//     per group version, each with a ?hash= of its content;
//   - /openapi/v3/api/v1 (and api, apis, version for the discovery
//     endpoints): those documents, in JSON or protobuf.
//
// The documents are made at build time: package builder describes the
// served resources' routes as k8s.io/apiserver does and hands them to
// kube-openapi's builders, and ./gen (go generate) writes the result as a
// bundle (zz_generated.openapi.json, an index, and zz_generated.openapi.bin,
// every form gzip-compressed) that this package embeds. Serving is a lookup
// of immutable bytes, safe for concurrent use, straight from the binary's
// read-only data. Responses carry an ETag (the SHA-512 of the JSON form,
// shared by the protobuf form through Vary: Accept, as kube-apiserver does)
// and honour If-None-Match.
//
//go:generate go run ./gen
package openapi

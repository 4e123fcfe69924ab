// Package pull finds images in OCI registries: it resolves a reference
// through the node's mirrors (k3s' registries.yaml model: mirrors per
// registry host, then the registry itself), authenticates (anonymous,
// basic, bearer token flows, with credentials from the node's
// configuration or from a pod's image pull secrets), applies per-host TLS
// settings, and picks the manifest matching the node's platform from an
// index.
//
// It only resolves: the returned v1.Image is lazy, and the image store
// (runtime/images) downloads, verifies and stores its blobs. Errors are
// classified with the sentinels below so that callers can report precise
// reasons without matching strings.
package pull

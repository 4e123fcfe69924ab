//go:build tools

package definitions

// The generator is pinned in go.mod through this import so that
// `go generate` and TestGeneratedFileIsCurrent run the same openapi-gen.
import _ "k8s.io/kube-openapi/cmd/openapi-gen"

// Package spdy is the server side of Kubernetes' SPDY/3.1 streams (exec,
// attach and port-forward), copied from k8s.io/apimachinery v0.34.2's
// pkg/util/httpstream/spdy: connection.go, upgrade.go and their tests,
// unchanged but for this comment.
//
// The agent only accepts SPDY connections, it never dials them: upstream's
// client side (roundtripper.go) builds a runtime.CodecFactory in a package
// variable, and that factory brings in the protobuf serializer, whose
// interface calls keep every k8s.io/api type's generated protobuf encoder
// (MarshalToSizedBuffer and friends, ~0.3 MB of code plus its line
// tables) in the kedge binary, which every kedge process maps.
package spdy

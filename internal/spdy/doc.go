// Package spdy is the server side of Kubernetes' SPDY/3.1 streams (exec,
// attach and port-forward), copied from k8s.io/apimachinery v0.34.2's
// pkg/util/httpstream/spdy: connection.go, upgrade.go and their tests,
// unchanged but for this comment.
//
// The agent only accepts SPDY connections, it never dials them: upstream's
// client side (roundtripper.go) builds a runtime.CodecFactory in a package
// variable, and that factory brings in the protobuf serializer, whose
// interface calls keep every k8s.io/api type's generated protobuf encoder
// (MarshalToSizedBuffer and friends, ~0.5 MB of code and tables) in the
// kedge binary. Without it the binary is that much smaller, and every byte
// of it is mapped by each kedge process on an edge box.
package spdy

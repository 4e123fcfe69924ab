package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryDependencies keeps heavy or forbidden modules out of the kedge
// binary (DESIGN.md: client-go and k8s.io/apiserver stay out; no containerd
// or gRPC). A new dependency shows up here for review first.
//
// The OpenAPI builders, gnostic and the protobuf runtime are ~5 MB of a
// ~23 MB binary that each kedge process maps: the documents are built at
// build time (server/openapi/gen). apimachinery's strategicpatch and SPDY
// client bring them (or the protobuf serializer, which keeps every API
// type's protobuf encoder) back in through a package import, so kedge uses
// its trimmed copies in internal/. net/rpc (with encoding/gob and
// html/template, whose initialisers run in every process) came with
// go-msgpack's RPC codecs, which third_party/hashicorp-go-msgpack leaves out.
func TestBinaryDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", "netgo osusergo sqlite_omit_load_extension seccomp", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{
		"k8s.io/client-go/",
		"k8s.io/apiserver/",
		"github.com/containerd/containerd",
		"google.golang.org/grpc",
		"go.etcd.io/etcd/",
		"google.golang.org/protobuf/",
		"github.com/google/gnostic-models/",
		"k8s.io/kube-openapi/",
		"kedge.dev/kedge/server/openapi/builder",
		"kedge.dev/kedge/server/openapi/definitions",
		"k8s.io/apimachinery/pkg/util/strategicpatch",
		"k8s.io/apimachinery/pkg/util/httpstream/spdy",
		"k8s.io/apimachinery/pkg/runtime/serializer/protobuf",
		"net/rpc",
		"encoding/gob",
		"html/template",
	}
	for _, pkg := range strings.Split(string(out), "\n") {
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				t.Errorf("the kedge binary links %s (forbidden prefix %s)", pkg, f)
			}
		}
	}
}

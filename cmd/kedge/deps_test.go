package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryDependencies keeps heavy or forbidden modules out of the kedge
// binary (DESIGN.md: client-go and k8s.io/apiserver stay out; no containerd
// or gRPC). A new dependency shows up here for review first.
func TestBinaryDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", "netgo osusergo sqlite_omit_load_extension", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{
		"k8s.io/client-go/",
		"k8s.io/apiserver/",
		"github.com/containerd/containerd",
		"google.golang.org/grpc",
		"go.etcd.io/etcd/",
	}
	for _, pkg := range strings.Split(string(out), "\n") {
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				t.Errorf("the kedge binary links %s (forbidden prefix %s)", pkg, f)
			}
		}
	}
}

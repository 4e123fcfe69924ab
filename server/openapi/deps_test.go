package openapi

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDependencies keeps the package's weight in check: the documents are
// built at build time (package builder), so serving them needs none of the
// libraries that build them, and the servers' heavy libraries stay out too.
func TestDependencies(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go is needed to list dependencies: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	for _, banned := range []string{
		"kedge.dev/kedge/server/openapi/builder",
		"kedge.dev/kedge/server/openapi/definitions",
		"k8s.io/apiserver",
		"k8s.io/client-go",
		"k8s.io/kube-openapi",
		"github.com/google/gnostic-models",
		"google.golang.org/protobuf",
		"google.golang.org/grpc",
	} {
		for _, d := range deps {
			if d == banned || strings.HasPrefix(d, banned+"/") {
				t.Errorf("server/openapi links %s", d)
			}
		}
	}
}

package openapi

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDependencies keeps the package's weight in check: the compiled
// definitions (package definitions) stay out of the binary, which carries
// them embedded, and so do the servers' heavy libraries.
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
		"kedge.dev/kedge/server/openapi/definitions",
		"k8s.io/apiserver",
		"k8s.io/client-go",
		"k8s.io/kube-openapi/pkg/handler",
		"k8s.io/kube-openapi/pkg/handler3",
		"google.golang.org/grpc",
	} {
		for _, d := range deps {
			if d == banned || strings.HasPrefix(d, banned+"/") {
				t.Errorf("server/openapi links %s", d)
			}
		}
	}
}

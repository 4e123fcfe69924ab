package openapi

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGeneratedFileIsCurrent runs the go:generate line of gen.go into a
// temporary directory and compares the result with the committed
// zz_generated.openapi.go, so the file is reproducible and never edited by
// hand.
func TestGeneratedFileIsCurrent(t *testing.T) {
	src, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(l, "//go:generate ") {
			line = strings.TrimPrefix(l, "//go:generate ")
		}
	}
	args := strings.Fields(line)
	if len(args) < 3 || args[0] != "go" {
		t.Fatalf("gen.go has no go:generate line running go: %q", line)
	}
	out := t.TempDir()
	replaced := false
	for i := range args {
		if args[i] == "--output-dir" && i+1 < len(args) {
			args[i+1] = out
			replaced = true
		}
	}
	if !replaced {
		t.Fatalf("the go:generate line has no --output-dir: %q", line)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go is needed to run the generator: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, args[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, stderr.String())
	}
	want, err := os.ReadFile(filepath.Join(out, "zz_generated.openapi.go"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("zz_generated.openapi.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("zz_generated.openapi.go is not what gen.go's go:generate line produces: run go generate ./server/openapi")
	}
}

package builder

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"kedge.dev/kedge/server/openapi/definitions"
)

// TestGeneratedFileIsCurrent runs the openapi-gen go:generate line of
// definitions/gen.go into a temporary directory and compares the result with
// the committed zz_generated.openapi.go, so the file is reproducible and
// never edited by hand.
func TestGeneratedFileIsCurrent(t *testing.T) {
	src, err := os.ReadFile("../definitions/gen.go")
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(l, "//go:generate ") && strings.Contains(l, "openapi-gen") {
			line = strings.TrimPrefix(l, "//go:generate ")
		}
	}
	args := strings.Fields(line)
	if len(args) < 3 || args[0] != "go" {
		t.Fatalf("definitions/gen.go has no go:generate line running openapi-gen: %q", line)
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
	cmd.Dir = "../definitions"
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, stderr.String())
	}
	want, err := os.ReadFile(filepath.Join(out, "zz_generated.openapi.go"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../definitions/zz_generated.openapi.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("definitions/zz_generated.openapi.go is not what its go:generate line produces: run go generate ./server/openapi/definitions")
	}
}

// TestEmbeddedDefinitionsMatchGenerated checks that the embedded gzipped
// JSON decodes to exactly what the generated GetOpenAPIDefinitions returns,
// with the references of both documents, so the binary serves the generated
// schemas without linking their code.
func TestEmbeddedDefinitionsMatchGenerated(t *testing.T) {
	set, err := loadDefinitions()
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"#/definitions/", "#/components/schemas/"} {
		ref := func(name string) spec.Ref { return spec.MustCreateRef(prefix + common.EscapeJsonPointer(name)) }
		want := definitions.GetOpenAPIDefinitions(ref)
		got := set.withRefs(ref)
		if len(got) != len(want) {
			t.Errorf("%s: %d embedded definitions, %d generated: run go generate ./server/openapi/definitions", prefix, len(got), len(want))
		}
		for name, w := range want {
			g, ok := got[name]
			if !ok {
				t.Errorf("%s: %s not embedded: run go generate ./server/openapi/definitions", prefix, name)
				continue
			}
			wj, err := json.Marshal(w)
			if err != nil {
				t.Fatal(err)
			}
			gj, err := json.Marshal(g)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gj, wj) {
				t.Errorf("%s: embedded %s differs from the generated one: run go generate ./server/openapi/definitions\n got %.300s\nwant %.300s", prefix, name, gj, wj)
			}
			if _, isSchema := w.Schema.Extensions[common.ExtensionV2Schema].(spec.Schema); isSchema {
				if _, ok := g.Schema.Extensions[common.ExtensionV2Schema].(spec.Schema); !ok {
					t.Errorf("%s: embedded %s lost its v2 schema's type", prefix, name)
				}
			}
		}
	}
	// Loading twice in different forms must not have changed the set.
	again, err := loadDefinitions()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(set)
	b, _ := json.Marshal(again)
	if !bytes.Equal(a, b) {
		t.Errorf("withRefs modified the loaded definitions")
	}
}

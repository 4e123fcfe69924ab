package pull_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"kedge.dev/kedge/runtime/images"
	"kedge.dev/kedge/runtime/pull"
	"kedge.dev/kedge/runtime/pull/pulltest"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// env is a store and a resolver for one test.
type env struct {
	store *images.Store
	res   *pull.Resolver
	root  string
}

func newEnv(t *testing.T, root string, regs pull.Registries) *env {
	t.Helper()
	if root == "" {
		root = t.TempDir()
	}
	st, err := images.New(images.Config{Root: root, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := pull.DefaultConfig()
	cfg.Architecture = "amd64"
	cfg.Registries = regs
	cfg.RetryBackoff = 10e6 // 10ms: tests of 5xx need not wait
	res, err := pull.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{store: st, res: res, root: root}
}

// pull resolves and ingests ref, reporting the first progress call.
func (e *env) pull(ctx context.Context, ref string, creds pull.Credentials) (images.Image, int64, error) {
	res, err := e.res.Resolve(ctx, ref, creds)
	if err != nil {
		return images.Image{}, 0, err
	}
	first := int64(-1)
	img, err := e.store.Ingest(ctx, images.Source{Image: res.Image, Names: []string{res.Name}, Manifest: res.Manifest},
		func(done, total int64) {
			if first < 0 {
				first = done
			}
		})
	return img, first, err
}

func configDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// assertNoPartial checks that a failed pull left no image, snapshot or
// temp file, and that every blob left (finished layers, kept so that a
// retry resumes) is complete.
func assertNoPartial(t *testing.T, root string) {
	t.Helper()
	for _, d := range []string{"images", "ingest", "tmp", "snapshots"} {
		ents, _ := os.ReadDir(filepath.Join(root, d))
		for _, e := range ents {
			t.Errorf("left in the store: %s/%s", d, e.Name())
		}
	}
	ents, _ := os.ReadDir(filepath.Join(root, "blobs", "sha256"))
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(root, "blobs", "sha256", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != e.Name() {
			t.Errorf("partial blob left in the store: %s", e.Name())
		}
	}
}

// assertClean checks that the store holds no image, blob or temp file.
func assertClean(t *testing.T, root string) {
	t.Helper()
	for _, d := range []string{"images", "ingest", "blobs/sha256", "tmp"} {
		ents, _ := os.ReadDir(filepath.Join(root, d))
		for _, e := range ents {
			t.Errorf("left in the store: %s/%s", d, e.Name())
		}
	}
	ents, _ := os.ReadDir(filepath.Join(root, "snapshots"))
	for _, e := range ents {
		t.Errorf("left in the store: snapshots/%s", e.Name())
	}
}

func TestPullAnonymous(t *testing.T) {
	reg := pulltest.Start(t, pulltest.Options{})
	img := pulltest.ShellImage(t, "anonymous")
	reg.Push(t, "team/app:1", img, "")
	e := newEnv(t, "", pull.Registries{})
	got, _, err := e.pull(context.Background(), reg.Host+"/team/app:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != configDigest(t, img) || got.Size <= 0 || len(got.Names) != 1 || got.Names[0] != reg.Host+"/team/app:1" {
		t.Errorf("pulled %+v", got)
	}
	// Layer blobs are dropped once unpacked; the snapshots stay.
	ents, _ := os.ReadDir(filepath.Join(e.root, "blobs", "sha256"))
	if len(ents) != 2 { // config + manifest
		t.Errorf("blobs after pull: %d, want config and manifest only", len(ents))
	}
	// A second pull of the same content downloads nothing.
	if _, first, err := e.pull(context.Background(), reg.Host+"/team/app:1", nil); err != nil || first != 0 {
		t.Errorf("second pull: first progress %d, err %v", first, err)
	}
}

func TestPullErrors(t *testing.T) {
	users := map[string]string{"alice": "s3cret"}
	reg := pulltest.Start(t, pulltest.Options{Users: users})
	reg.Push(t, "app:1", pulltest.ShellImage(t, "auth"), "alice")
	ref := reg.Host + "/app:1"
	tests := []struct {
		name  string
		regs  pull.Registries
		creds pull.Credentials
		ref   string
		want  error
	}{
		{name: "no credentials", ref: ref, want: pull.ErrUnauthorized},
		{name: "wrong password in registries.yaml", ref: ref, want: pull.ErrUnauthorized,
			regs: pull.Registries{Configs: map[string]pull.HostConfig{reg.Host: {Auth: &pull.Auth{Username: "alice", Password: "nope"}}}}},
		{name: "registries.yaml", ref: ref,
			regs: pull.Registries{Configs: map[string]pull.HostConfig{reg.Host: {Auth: &pull.Auth{Username: "alice", Password: "s3cret"}}}}},
		{name: "pull secret wins over registries.yaml", ref: ref,
			regs:  pull.Registries{Configs: map[string]pull.HostConfig{reg.Host: {Auth: &pull.Auth{Username: "alice", Password: "nope"}}}},
			creds: pull.Credentials{reg.Host: {Username: "alice", Password: "s3cret"}}},
		{name: "missing tag", ref: reg.Host + "/app:2", want: pull.ErrNotFound,
			creds: pull.Credentials{reg.Host: {Username: "alice", Password: "s3cret"}}},
		{name: "missing repository", ref: reg.Host + "/nothing:1", want: pull.ErrNotFound,
			creds: pull.Credentials{reg.Host: {Username: "alice", Password: "s3cret"}}},
		{name: "nobody listening", ref: "127.0.0.1:1/app:1", want: pull.ErrRegistry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "", tt.regs)
			_, _, err := e.pull(context.Background(), tt.ref, tt.creds)
			if tt.want == nil && err != nil {
				t.Fatalf("pull: %v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("pull: %v, want %v", err, tt.want)
			}
			if tt.want != nil {
				assertClean(t, e.root)
			}
		})
	}
}

func TestPullTLS(t *testing.T) {
	reg := pulltest.Start(t, pulltest.Options{TLS: true})
	reg.Push(t, "app:1", pulltest.ShellImage(t, "tls"), "")
	ref := reg.Host + "/app:1"
	// Without the CA the registry's certificate is not trusted.
	e := newEnv(t, "", pull.Registries{Configs: map[string]pull.HostConfig{reg.Host: {TLS: &tls.Config{}}}})
	if _, _, err := e.pull(context.Background(), ref, nil); !errors.Is(err, pull.ErrRegistry) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("pull without CA: %v", err)
	}
	e = newEnv(t, "", pull.Registries{Configs: map[string]pull.HostConfig{reg.Host: {TLS: &tls.Config{RootCAs: reg.CAPool}}}})
	if _, _, err := e.pull(context.Background(), ref, nil); err != nil {
		t.Fatalf("pull with CA: %v", err)
	}
	e = newEnv(t, "", pull.Registries{Configs: map[string]pull.HostConfig{reg.Host: {TLS: &tls.Config{InsecureSkipVerify: true}}}})
	if _, _, err := e.pull(context.Background(), ref, nil); err != nil {
		t.Fatalf("pull with insecure_skip_verify: %v", err)
	}
}

func TestPullThroughMirror(t *testing.T) {
	reg := pulltest.Start(t, pulltest.Options{})
	img := pulltest.ShellImage(t, "mirror")
	reg.Push(t, "library/busybox:1.36", img, "")
	e := newEnv(t, "", pull.Registries{Mirrors: map[string]pull.Mirror{"docker.io": {Endpoints: []string{"http://" + reg.Host}}}})
	got, _, err := e.pull(context.Background(), "busybox:1.36", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != configDigest(t, img) || got.Names[0] != "docker.io/library/busybox:1.36" {
		t.Errorf("pulled %+v", got)
	}
}

func TestPullPlatform(t *testing.T) {
	reg := pulltest.Start(t, pulltest.Options{})
	amd := pulltest.WithPlatform(t, pulltest.ShellImage(t, "amd64"), "linux", "amd64")
	arm := pulltest.WithPlatform(t, pulltest.ShellImage(t, "arm64"), "linux", "arm64")
	reg.Push(t, "arm-only:1", arm, "")
	reg.PushIndex(t, "multi:1", pulltest.Index(t, arm, amd), "")
	reg.PushIndex(t, "arm-index:1", pulltest.Index(t, arm), "")
	e := newEnv(t, "", pull.Registries{})

	_, _, err := e.pull(context.Background(), reg.Host+"/arm-only:1", nil)
	if !errors.Is(err, pull.ErrPlatform) || !strings.Contains(err.Error(), "image platform linux/arm64 does not match node linux/amd64") {
		t.Errorf("single-arch arm64 image: %v", err)
	}
	_, _, err = e.pull(context.Background(), reg.Host+"/arm-index:1", nil)
	if !errors.Is(err, pull.ErrPlatform) || !strings.Contains(err.Error(), "no manifest for node platform linux/amd64 (it has linux/arm64)") {
		t.Errorf("arm64-only index: %v", err)
	}
	got, _, err := e.pull(context.Background(), reg.Host+"/multi:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != configDigest(t, amd) {
		t.Errorf("index resolved to %s, want the amd64 image %s", got.ID, configDigest(t, amd))
	}
}

func TestPullByDigest(t *testing.T) {
	reg := pulltest.Start(t, pulltest.Options{})
	img := pulltest.ShellImage(t, "digest")
	reg.Push(t, "app:1", img, "")
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/app@" + d.String()
	e := newEnv(t, "", pull.Registries{})
	got, _, err := e.pull(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The node finds it again by the same reference (IfNotPresent).
	if r, err := e.store.Get(ref); err != nil || r.ID != got.ID {
		t.Fatalf("Get(%s) = %+v, %v", ref, r, err)
	}
}

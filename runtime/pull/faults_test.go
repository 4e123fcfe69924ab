package pull_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"kedge.dev/kedge/runtime/images"
	"kedge.dev/kedge/runtime/pull"
	"kedge.dev/kedge/runtime/pull/pulltest"
)

func TestPullRegistryFailure(t *testing.T) {
	reg := pulltest.Start(t, pulltest.Options{})
	img := pulltest.ShellImage(t, "faults")
	reg.Push(t, "app:1", img, "")
	layers, _ := img.Layers()
	top, _ := layers[1].Digest()
	tests := []struct {
		name  string
		fault func(*http.Request) int
		want  error
		text  string
	}{
		{"manifest 500", func(r *http.Request) int {
			if strings.Contains(r.URL.Path, "/manifests/") {
				return 500
			}
			return 0
		}, pull.ErrRegistry, "500"},
		{"manifest 401", func(r *http.Request) int {
			if strings.Contains(r.URL.Path, "/manifests/") {
				return 401
			}
			return 0
		}, pull.ErrUnauthorized, "401"},
		{"layer 500", func(r *http.Request) int {
			if strings.HasSuffix(r.URL.Path, "/blobs/"+top.String()) {
				return 500
			}
			return 0
		}, nil, "500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := reg.Proxy(t, tt.fault)
			e := newEnv(t, "", pull.Registries{})
			_, _, err := e.pull(context.Background(), host+"/app:1", nil)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("pull: %v, want %v mentioning %q", err, tt.want, tt.text)
			}
			assertNoPartial(t, e.root)
		})
	}
}

func TestPullCorruptBlob(t *testing.T) {
	reg := pulltest.Start(t, pulltest.Options{})
	img := pulltest.ShellImage(t, "corrupt")
	reg.Push(t, "app:1", img, "")
	layers, _ := img.Layers()
	top, _ := layers[1].Digest()
	p := reg.BlobPath(top.String())
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff // same size, other content
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "", pull.Registries{})
	_, _, err = e.pull(context.Background(), reg.Host+"/app:1", nil)
	if err == nil || !strings.Contains(err.Error(), top.String()) {
		t.Fatalf("pull of a corrupt layer: %v", err)
	}
	assertNoPartial(t, e.root)
	if _, err := os.Stat(filepath.Join(e.root, "blobs", "sha256", top.Hex)); err == nil {
		t.Error("the corrupt layer was stored")
	}
}

// failingImage fails to fetch one layer once the other has been stored,
// as a download interrupted midway does.
type failingImage struct {
	v1.Image
	fail      v1.Hash
	waitBlobs string // file whose existence means the other layer is stored
}

func (f failingImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	if h == f.fail {
		for i := 0; i < 500; i++ {
			if _, err := os.Stat(f.waitBlobs); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		return nil, errors.New("connection reset (injected)")
	}
	return f.Image.LayerByDigest(h)
}

func TestPullResumesFinishedLayers(t *testing.T) {
	reg := pulltest.Start(t, pulltest.Options{})
	reg.Push(t, "app:1", pulltest.ShellImage(t, "resume"), "")
	e := newEnv(t, "", pull.Registries{})
	ctx := context.Background()
	res, err := e.res.Resolve(ctx, reg.Host+"/app:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := res.Image.Manifest()
	base, top := m.Layers[0], m.Layers[1]
	_, err = e.store.Ingest(ctx, images.Source{Image: failingImage{res.Image, top.Digest, filepath.Join(e.root, "blobs", "sha256", base.Digest.Hex)}, Names: []string{res.Name}, Manifest: res.Manifest}, nil)
	if err == nil {
		t.Fatal("interrupted pull succeeded")
	}
	if _, err := e.store.Get(res.Name); !errors.Is(err, images.ErrImageNotPresent) {
		t.Fatalf("image recorded after a failed pull: %v", err)
	}
	// The retry starts with the finished base layer counted as done.
	_, first, err := e.pull(ctx, reg.Host+"/app:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if first != base.Size {
		t.Errorf("retry started at %d bytes, want the finished base layer's %d", first, base.Size)
	}
}

// TestPullDiskFull pulls into a tmpfs too small for the image: once too
// small for the download, once too small for the unpacked layers.
func TestPullDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("TestPullDiskFull mounts a tmpfs and needs root (CI runs as root)")
	}
	reg := pulltest.Start(t, pulltest.Options{})
	img := pulltest.ShellImage(t, "full")
	reg.Push(t, "app:1", img, "")
	m, _ := img.Manifest()
	compressed := m.Layers[0].Size + m.Layers[1].Size
	for _, tt := range []struct {
		name string
		size int64
	}{
		{"download", compressed / 2},
		{"unpack", compressed + 256<<10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if err := syscall.Mount("tmpfs", root, "tmpfs", 0, fmt.Sprintf("size=%d", tt.size)); err != nil {
				t.Fatalf("mount tmpfs: %v", err)
			}
			t.Cleanup(func() { syscall.Unmount(root, syscall.MNT_DETACH) })
			e := newEnv(t, root, pull.Registries{})
			_, _, err := e.pull(context.Background(), reg.Host+"/app:1", nil)
			if !errors.Is(err, images.ErrNoSpace) {
				t.Fatalf("pull into a full disk: %v, want ErrNoSpace", err)
			}
			assertClean(t, root)
		})
	}
}

package images

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"kedge.dev/kedge/test/images/imagebuild"
)

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("image store tests need root (layers keep ownership and device nodes); run as root")
	}
	root := t.TempDir()
	s, err := New(Config{Root: root, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func writeArchive(t *testing.T, name string, gz bool, fn func(io.Writer) error) string {
	t.Helper()
	var buf bytes.Buffer
	if err := fn(&buf); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if gz {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(data)
		zw.Close()
		data = z.Bytes()
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func testImages(t *testing.T) (shell, web imagebuild.Built) {
	t.Helper()
	shell, err := imagebuild.ShellImage("/usr/bin/busybox", "registry.k8s.io/busybox:latest", "alpine")
	if err != nil {
		t.Fatal(err)
	}
	page, err := imagebuild.LayerTar([]imagebuild.File{
		{Path: "www", Dir: true}, {Path: "www/index.html", Body: []byte("hi")}, {Path: "etc/passwd", Whiteout: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	web, err = imagebuild.Build([]string{"nginx:1.14.2"}, imagebuild.Config{Cmd: []string{"httpd"}, Env: []string{"A=1"}, WorkingDir: "/www", User: "nobody"}, shell.Layers[0], page)
	if err != nil {
		t.Fatal(err)
	}
	return shell, web
}

func TestImportFormats(t *testing.T) {
	shell, web := testImages(t)
	formats := []struct {
		name  string
		gz    bool
		write func(io.Writer) error
	}{
		{"docker archive", false, func(w io.Writer) error { return imagebuild.WriteDockerArchive(w, shell, web) }},
		{"docker archive gzip", true, func(w io.Writer) error { return imagebuild.WriteDockerArchive(w, shell, web) }},
		{"oci layout", false, func(w io.Writer) error { return imagebuild.WriteOCILayout(w, imagebuild.OCIOptions{}, shell, web) }},
		{"oci layout gzip layers, gzip archive", true, func(w io.Writer) error {
			return imagebuild.WriteOCILayout(w, imagebuild.OCIOptions{Gzip: true}, shell, web)
		}},
	}
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			s, root := newStore(t)
			path := writeArchive(t, "images.tar", f.gz, f.write)
			got, err := s.Import(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 {
				t.Fatalf("imported %d images: %+v", len(got), got)
			}
			for ref, id := range map[string]string{
				"alpine": shell.ConfigDigest, "docker.io/library/alpine:latest": shell.ConfigDigest,
				"registry.k8s.io/busybox": shell.ConfigDigest, "nginx:1.14.2": web.ConfigDigest, web.ConfigDigest: web.ConfigDigest,
			} {
				r, err := s.Get(ref)
				if err != nil || r.ID != id {
					t.Errorf("Get(%q) = %s, %v; want %s", ref, r.ID, err, id)
				}
			}
			if _, err := s.Get("nginx"); !errors.Is(err, ErrImageNotPresent) {
				t.Errorf("Get(nginx) err = %v", err)
			}
			r, _ := s.Get("nginx:1.14.2")
			if !slices.Equal(r.Cmd, []string{"httpd"}) || r.WorkingDir != "/www" || r.User != "nobody" || !slices.Equal(r.Env, []string{"A=1"}) {
				t.Errorf("config not carried: %+v", r.Image)
			}
			if r.Size < 1<<20 || len(r.ChainIDs) != 2 || r.ChainIDs[0] != shell.DiffIDs[0] {
				t.Errorf("size %d chain %v", r.Size, r.ChainIDs)
			}
			// The shared base layer is unpacked once.
			snaps, _ := s.Snapshots().List()
			if len(snaps) != 2 {
				t.Errorf("snapshots %v, want 2 (base shared)", snaps)
			}
			dir, _ := s.Snapshots().Dir(r.ChainIDs[1])
			if b, err := os.ReadFile(filepath.Join(dir, "www", "index.html")); err != nil || string(b) != "hi" {
				t.Errorf("layer content: %q %v", b, err)
			}
			if _, err := os.Stat(filepath.Join(root, "blobs", "sha256", r.ID[7:])); err != nil {
				t.Errorf("config blob missing: %v", err)
			}

			// Records survive a reopen.
			s2, err := New(Config{Root: root, Logger: s.cfg.Logger})
			if err != nil {
				t.Fatal(err)
			}
			if len(s2.List()) != 2 {
				t.Fatalf("after reopen: %d images", len(s2.List()))
			}
			// Untag one of two names, then remove by last name: the shared
			// base stays while the shell image lives.
			if err := s2.Remove("alpine", nil); err != nil {
				t.Fatal(err)
			}
			if r, err := s2.Get("registry.k8s.io/busybox:latest"); err != nil || len(r.Names) != 1 {
				t.Fatalf("untag: %+v %v", r.Names, err)
			}
			if err := s2.Remove("nginx:1.14.2", nil); err != nil {
				t.Fatal(err)
			}
			snaps, _ = s2.Snapshots().List()
			if len(snaps) != 1 || snaps[0] != shell.DiffIDs[0] {
				t.Errorf("after removing nginx: snapshots %v", snaps)
			}
			if err := s2.Remove(shell.ConfigDigest, nil); err != nil {
				t.Fatal(err)
			}
			assertNoContent(t, root)
		})
	}
}

func TestRemoveKeepsSnapshotsInUse(t *testing.T) {
	shell, _ := testImages(t)
	s, _ := newStore(t)
	path := writeArchive(t, "a.tar", false, func(w io.Writer) error { return imagebuild.WriteDockerArchive(w, shell) })
	if _, err := s.Import(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(shell.ConfigDigest, func(c string) bool { return c == shell.DiffIDs[0] }); err != nil {
		t.Fatal(err)
	}
	if !s.Snapshots().Has(shell.DiffIDs[0]) {
		t.Fatal("snapshot in use was removed")
	}
}

func TestRetagMovesName(t *testing.T) {
	shell, web := testImages(t)
	s, _ := newStore(t)
	web.Names = []string{"alpine:latest"}
	for _, img := range []imagebuild.Built{shell, web} {
		path := writeArchive(t, "a.tar", false, func(w io.Writer) error { return imagebuild.WriteDockerArchive(w, img) })
		if _, err := s.Import(context.Background(), path); err != nil {
			t.Fatal(err)
		}
	}
	if r, _ := s.Get("alpine"); r.ID != web.ConfigDigest {
		t.Fatalf("alpine = %s, want the newer image", r.ID)
	}
	if r, _ := s.Get(shell.ConfigDigest); !slices.Equal(r.Names, []string{"registry.k8s.io/busybox:latest"}) {
		t.Fatalf("old image names %v", r.Names)
	}
}

func TestImportCorruptLayerLeavesNothing(t *testing.T) {
	shell, web := testImages(t)
	// Corrupt the top layer's content: the config's diff ID no longer matches.
	web.Layers[1] = bytes.Replace(web.Layers[1], []byte("hi"), []byte("HI"), 1)
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{
		{"docker", func(w io.Writer) error { return imagebuild.WriteDockerArchive(w, web) }},
		{"oci", func(w io.Writer) error { return imagebuild.WriteOCILayout(w, imagebuild.OCIOptions{}, web) }},
	} {
		t.Run(f.name, func(t *testing.T) {
			s, root := newStore(t)
			_, err := s.Import(context.Background(), writeArchive(t, "bad.tar", false, f.write))
			if !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("err = %v, want digest mismatch", err)
			}
			assertNoContent(t, root)
			if len(s.List()) != 0 {
				t.Fatal("record stored")
			}
		})
	}
	_ = shell
}

func TestImportUnknownFormat(t *testing.T) {
	s, _ := newStore(t)
	p := writeArchive(t, "x.tar", false, func(w io.Writer) error {
		return imagebuild.WriteDockerArchive(io.Discard, imagebuild.Built{})
	})
	if _, err := s.Import(context.Background(), p); !errors.Is(err, ErrUnknownFormat) {
		t.Fatalf("err = %v", err)
	}
}

// assertNoContent checks that no blob, snapshot, record or temp file remains.
func assertNoContent(t *testing.T, root string) {
	t.Helper()
	for _, d := range []string{"blobs/sha256", "snapshots", "images", "ingest", "tmp"} {
		ents, err := os.ReadDir(filepath.Join(root, d))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if len(names) != 0 {
			t.Errorf("%s not empty: %v", d, names)
		}
	}
}

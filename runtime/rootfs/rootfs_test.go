package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func layerTar(t *testing.T, entries ...entry) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: mode, Linkname: e.link, ModTime: time.Unix(1700000000, 0)}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), "sha256:" + hex.EncodeToString(sum[:])
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (mknod, overlayfs, trusted xattrs); run it as root")
	}
}

func TestChainIDs(t *testing.T) {
	a := "sha256:" + strings.Repeat("a", 64)
	b := "sha256:" + strings.Repeat("b", 64)
	sum := sha256.Sum256([]byte(a + " " + b))
	want := "sha256:" + hex.EncodeToString(sum[:])
	got := ChainIDs([]string{a, b})
	if got[0] != a || got[1] != want {
		t.Fatalf("ChainIDs = %v", got)
	}
}

func TestUnpackAndMount(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	root := t.TempDir()
	s, err := NewSnapshots(filepath.Join(root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	base, baseID := layerTar(t,
		entry{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "etc/keep", typ: tar.TypeReg, body: "keep"},
		entry{name: "etc/gone", typ: tar.TypeReg, body: "gone"},
		entry{name: "opq/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "opq/old", typ: tar.TypeReg, body: "old"},
		entry{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "bin/tool", typ: tar.TypeReg, body: "#!", mode: 0o4755},
		entry{name: "bin/hard", typ: tar.TypeLink, link: "bin/tool"},
		entry{name: "escape", typ: tar.TypeSymlink, link: "/../../../outside"},
		entry{name: "escape/file", typ: tar.TypeReg, body: "contained"},
	)
	top, topID := layerTar(t,
		entry{name: "etc/.wh.gone", typ: tar.TypeReg},
		entry{name: "opq/.wh..wh..opq", typ: tar.TypeReg},
		entry{name: "opq/new", typ: tar.TypeReg, body: "new"},
	)
	chain := ChainIDs([]string{baseID, topID})
	for i, l := range [][]byte{base, top} {
		created, err := s.Unpack(ctx, chain[i], []string{baseID, topID}[i], bytes.NewReader(l))
		if err != nil || !created {
			t.Fatalf("unpack %d: created=%v err=%v", i, created, err)
		}
	}
	baseDir, _ := s.Dir(chain[0])
	if _, err := os.Stat(filepath.Join(baseDir, "outside", "file")); err != nil {
		t.Fatalf("a file under a symlink to / should land inside the layer: %v", err)
	}
	fi, err := os.Stat(filepath.Join(baseDir, "bin", "tool"))
	if err != nil || fi.Mode()&os.ModeSetuid == 0 {
		t.Fatalf("setuid bit lost: %v %v", fi.Mode(), err)
	}
	if st, _ := os.Stat(filepath.Join(baseDir, "bin", "hard")); !os.SameFile(fi, st) {
		t.Fatal("hard link not linked")
	}
	topDir, _ := s.Dir(chain[1])
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(topDir, "etc", "gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("whiteout not a 0/0 char device: %+v %v", st, err)
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(topDir, "opq"), overlayOpaqueXattr, buf); err != nil || string(buf[:n]) != "y" {
		t.Fatalf("opaque xattr: %q %v", buf[:n], err)
	}

	l := NewLayout(filepath.Join(root, "c1"))
	if err := Mount(l, []string{topDir, baseDir}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Unmount(l) })
	check := map[string]string{"etc/keep": "keep", "opq/new": "new"}
	for p, want := range check {
		b, err := os.ReadFile(filepath.Join(l.Merged, p))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q %v", p, b, err)
		}
	}
	for _, p := range []string{"etc/gone", "opq/old"} {
		if _, err := os.Lstat(filepath.Join(l.Merged, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s should be hidden: %v", p, err)
		}
	}
	if err := os.WriteFile(filepath.Join(l.Merged, "etc", "keep"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(baseDir, "etc", "keep")); string(b) != "keep" {
		t.Fatal("write through the overlay changed the shared layer")
	}
	if err := Unmount(l); err != nil {
		t.Fatal(err)
	}
	if err := Unmount(l); err != nil {
		t.Fatalf("second unmount: %v", err)
	}
	if m, _ := mountinfo.Mounted(l.Merged); m {
		t.Fatal("still mounted")
	}
	if _, err := os.Stat(l.Upper); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("upper dir left behind")
	}
	// Unpacking again is a no-op.
	if created, err := s.Unpack(ctx, chain[0], baseID, bytes.NewReader(nil)); err != nil || created {
		t.Fatalf("re-unpack: %v %v", created, err)
	}
	if size, err := s.Size(chain[0]); err != nil || size != int64(len("keep")+len("gone")+len("old")+len("#!")+len("contained")) {
		t.Fatalf("size %d %v", size, err)
	}
}

func TestUnpackMismatchLeavesNothing(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	s, err := NewSnapshots(root)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := layerTar(t, entry{name: "f", typ: tar.TypeReg, body: "x"})
	wrong := "sha256:" + strings.Repeat("0", 64)
	_, err = s.Unpack(context.Background(), wrong, wrong, bytes.NewReader(l))
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("err = %v", err)
	}
	ents, _ := os.ReadDir(root)
	if len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
}

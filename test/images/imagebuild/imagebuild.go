// Package imagebuild builds small container images deterministically (fixed
// timestamps and ordering, so digests are stable) and writes them as docker
// archives or OCI image layouts. The test suite uses it for the stand-in
// images named in the reference manifests, built from Debian's
// busybox-static because no registry is reachable.
package imagebuild

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"
)

// Epoch is the timestamp of every file and config: fixed so that a rebuild
// gives the same digests.
var Epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// File is one entry of a layer.
type File struct {
	Path string // relative, slash-separated
	Mode int64  // permission bits (and set-id bits)
	Body []byte // regular file content
	// Link makes the entry a symlink to Link.
	Link string
	// Dir makes the entry a directory.
	Dir bool
	// Hardlink makes the entry a hard link to another path of the layer.
	Hardlink string
	// Whiteout makes the entry an OCI whiteout (".wh.<name>") deleting Path.
	Whiteout bool
}

// Config is the part of the OCI image config that matters here.
type Config struct {
	Entrypoint   []string
	Cmd          []string
	Env          []string
	WorkingDir   string
	User         string
	ExposedPorts []string // "80/tcp"
}

// Built is an image ready to be written.
type Built struct {
	Names        []string
	Config       []byte   // raw config JSON
	ConfigDigest string   // sha256:... of Config: the image ID
	Layers       [][]byte // uncompressed layer tars, bottom first
	DiffIDs      []string
}

// LayerTar writes files as a deterministic tar: sorted by path, owned by root,
// stamped with Epoch.
func LayerTar(files []File) ([]byte, error) {
	sorted := append([]File(nil), files...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range sorted {
		h := &tar.Header{Name: f.Path, Mode: f.Mode, ModTime: Epoch, Format: tar.FormatPAX, Uname: "root", Gname: "root"}
		switch {
		case f.Whiteout:
			dir, base := path.Split(f.Path)
			h.Name, h.Typeflag, h.Mode = dir+".wh."+base, tar.TypeReg, 0o644
		case f.Dir:
			h.Typeflag, h.Name = tar.TypeDir, strings.TrimSuffix(f.Path, "/")+"/"
		case f.Link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.Link
			if h.Mode == 0 {
				h.Mode = 0o777
			}
		case f.Hardlink != "":
			h.Typeflag, h.Linkname = tar.TypeLink, f.Hardlink
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.Path, err)
		}
		if h.Typeflag == tar.TypeReg && !f.Whiteout {
			if _, err := tw.Write(f.Body); err != nil {
				return nil, fmt.Errorf("write %s: %w", f.Path, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Digest returns "sha256:<hex>" of b.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// Build assembles an image from layer tars and a config.
func Build(names []string, cfg Config, layers ...[]byte) (Built, error) {
	b := Built{Names: names, Layers: layers}
	for _, l := range layers {
		b.DiffIDs = append(b.DiffIDs, Digest(l))
	}
	type ociConfig struct {
		Entrypoint   []string            `json:"Entrypoint,omitempty"`
		Cmd          []string            `json:"Cmd,omitempty"`
		Env          []string            `json:"Env,omitempty"`
		WorkingDir   string              `json:"WorkingDir,omitempty"`
		User         string              `json:"User,omitempty"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	}
	oc := ociConfig{Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd, Env: cfg.Env, WorkingDir: cfg.WorkingDir, User: cfg.User}
	for _, p := range cfg.ExposedPorts {
		if oc.ExposedPorts == nil {
			oc.ExposedPorts = map[string]struct{}{}
		}
		oc.ExposedPorts[p] = struct{}{}
	}
	var history []map[string]any
	for range layers {
		history = append(history, map[string]any{"created": Epoch, "created_by": "kedge imagebuild"})
	}
	raw, err := json.Marshal(map[string]any{
		"architecture": goarch(),
		"os":           "linux",
		"created":      Epoch,
		"config":       oc,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": nonNil(b.DiffIDs)},
		"history":      history,
	})
	if err != nil {
		return Built{}, err
	}
	b.Config, b.ConfigDigest = raw, Digest(raw)
	return b, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// BusyboxFiles returns a root filesystem made of the static busybox at
// busyboxPath, a symlink for each of its applets, a minimal /etc and the
// usual empty directories.
func BusyboxFiles(busyboxPath string) ([]File, error) {
	bin, err := os.ReadFile(busyboxPath)
	if err != nil {
		return nil, fmt.Errorf("read busybox: %w", err)
	}
	out, err := exec.Command(busyboxPath, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("list busybox applets: %w", err)
	}
	files := []File{
		{Path: "bin", Dir: true}, {Path: "sbin", Dir: true}, {Path: "usr", Dir: true},
		{Path: "usr/bin", Dir: true}, {Path: "usr/sbin", Dir: true}, {Path: "etc", Dir: true},
		{Path: "root", Dir: true, Mode: 0o700}, {Path: "tmp", Dir: true, Mode: 0o1777},
		{Path: "var", Dir: true}, {Path: "var/tmp", Dir: true, Mode: 0o1777}, {Path: "home", Dir: true},
		{Path: "proc", Dir: true}, {Path: "sys", Dir: true}, {Path: "dev", Dir: true},
		{Path: "bin/busybox", Mode: 0o755, Body: bin},
		{Path: "etc/passwd", Body: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")},
		{Path: "etc/group", Body: []byte("root:x:0:\nnobody:x:65534:\n")},
	}
	seen := map[string]bool{"bin/busybox": true}
	for _, p := range strings.Fields(string(out)) {
		if seen[p] {
			continue
		}
		seen[p] = true
		files = append(files, File{Path: p, Link: "/bin/busybox"})
	}
	return files, nil
}

// DefaultEnv is the PATH every stand-in image sets.
var DefaultEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

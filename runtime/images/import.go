package images

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ErrUnknownFormat is wrapped when an archive is neither an OCI layout nor
// a docker archive.
var ErrUnknownFormat = errors.New("unknown image archive format")

// Annotations that name an image in an OCI layout index.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

// candidate is one image found in an archive.
type candidate struct {
	img      v1.Image
	names    []string
	manifest []byte // raw manifest, when the source has one
}

// Import stores every image of the archive at path: an OCI image layout or
// a docker archive (`docker save`), each optionally gzip-compressed. Every
// tag inside becomes a name of its image (moved from any other image that
// had it). On error for one image, what that image added is removed again
// and the import stops.
func (s *Store) Import(ctx context.Context, archive string) ([]Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	scratch, err := os.MkdirTemp(s.tmp, "import-")
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", archive, err)
	}
	defer os.RemoveAll(scratch)

	tarPath, err := decompressed(archive, scratch)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", archive, err)
	}
	format, err := sniff(tarPath)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", archive, err)
	}
	var cands []candidate
	switch format {
	case "docker":
		cands, err = dockerCandidates(tarPath)
	case "oci":
		cands, err = ociCandidates(tarPath, filepath.Join(scratch, "layout"))
	}
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", archive, err)
	}
	var out []Image
	for _, c := range cands {
		r, err := s.store(ctx, c)
		if err != nil {
			return out, fmt.Errorf("import %s: %w", archive, err)
		}
		s.cfg.Logger.Info("image imported", "id", r.ID, "names", r.Names)
		out = append(out, cloneRecord(r).Image)
	}
	return out, nil
}

// decompressed returns a path to the uncompressed tar: archive itself, or
// a gunzipped copy in scratch.
func decompressed(archive, scratch string) (string, error) {
	f, err := os.Open(archive)
	if err != nil {
		return "", err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, err := br.Peek(2)
	if err != nil || !bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		return archive, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return "", fmt.Errorf("gunzip: %w", err)
	}
	out := filepath.Join(scratch, "archive.tar")
	w, err := os.Create(out)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(w, zr); err != nil {
		w.Close()
		return "", fmt.Errorf("gunzip: %w", err)
	}
	return out, w.Close()
}

// sniff tells "docker" from "oci" by the files at the archive's top.
func sniff(tarPath string) (string, error) {
	f, err := os.Open(tarPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var hasIndex, hasLayout, hasManifest bool
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("read archive: %w", err)
		}
		switch path.Clean(h.Name) {
		case "index.json":
			hasIndex = true
		case "oci-layout":
			hasLayout = true
		case "manifest.json":
			hasManifest = true
		}
	}
	switch {
	case hasIndex && hasLayout:
		return "oci", nil // docker ≥25 writes both; the OCI side has the names too
	case hasManifest:
		return "docker", nil
	}
	return "", ErrUnknownFormat
}

func dockerCandidates(tarPath string) ([]candidate, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(tarPath) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("read docker archive manifest: %w", err)
	}
	var out []candidate
	for _, d := range m {
		var img v1.Image
		switch {
		case len(d.RepoTags) > 0:
			tag, err := name.NewTag(d.RepoTags[0])
			if err != nil {
				return nil, fmt.Errorf("docker archive tag %q: %w", d.RepoTags[0], err)
			}
			img, err = tarball.Image(opener, &tag)
			if err != nil {
				return nil, fmt.Errorf("read image %s: %w", tag, err)
			}
		case len(m) == 1:
			img, err = tarball.Image(opener, nil)
			if err != nil {
				return nil, fmt.Errorf("read image: %w", err)
			}
		default:
			return nil, fmt.Errorf("%w: docker archive with several images, one without a tag", ErrUnknownFormat)
		}
		names, err := normalizeAll(d.RepoTags)
		if err != nil {
			return nil, err
		}
		out = append(out, candidate{img: img, names: names})
	}
	return out, nil
}

// ociCandidates extracts the layout and lists its images, choosing the
// manifest for this machine's platform from nested indexes.
func ociCandidates(tarPath, dir string) ([]candidate, error) {
	if err := extractLayout(tarPath, dir); err != nil {
		return nil, err
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("read OCI layout: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read OCI index: %w", err)
	}
	byDigest := map[v1.Hash]int{}
	var out []candidate
	for _, desc := range im.Manifests {
		img, err := imageFor(idx, desc)
		if err != nil {
			return nil, err
		}
		raw, err := img.RawManifest()
		if err != nil {
			return nil, fmt.Errorf("read manifest %s: %w", desc.Digest, err)
		}
		sum := sha256.Sum256(raw)
		md, _ := v1.NewHash("sha256:" + hex.EncodeToString(sum[:]))
		var names []string
		// containerd's annotation holds a full name; the OCI one is often a
		// bare tag ("latest") that names no repository and cannot be used.
		if n := desc.Annotations[annotationContainerdName]; n != "" {
			if nn, err := Normalize(n); err == nil {
				names = append(names, nn)
			}
		} else if n := desc.Annotations[annotationRefName]; strings.ContainsAny(n, "/:") {
			if nn, err := Normalize(n); err == nil {
				names = append(names, nn)
			}
		}
		if i, ok := byDigest[md]; ok {
			out[i].names = appendUnique(out[i].names, names...)
			continue
		}
		byDigest[md] = len(out)
		out = append(out, candidate{img: img, names: names, manifest: raw})
	}
	return out, nil
}

func imageFor(idx v1.ImageIndex, desc v1.Descriptor) (v1.Image, error) {
	switch desc.MediaType {
	case types.OCIImageIndex, types.DockerManifestList:
		child, err := idx.ImageIndex(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("read index %s: %w", desc.Digest, err)
		}
		cm, err := child.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("read index %s: %w", desc.Digest, err)
		}
		want := v1.Platform{OS: "linux", Architecture: goruntime.GOARCH}
		for _, m := range cm.Manifests {
			if m.Platform != nil && m.Platform.Satisfies(want) {
				return imageFor(child, m)
			}
		}
		return nil, fmt.Errorf("index %s has no image for linux/%s", desc.Digest, goruntime.GOARCH)
	default:
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("read image %s: %w", desc.Digest, err)
		}
		return img, nil
	}
}

// extractLayout unpacks the regular files of an OCI layout tar into dir.
func extractLayout(tarPath, dir string) error {
	f, err := os.Open(tarPath)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read OCI layout tar: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		rel := path.Clean("/" + h.Name)[1:]
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		w, err := os.Create(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(w, tr)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("extract %s: %w", h.Name, err)
		}
	}
}

func normalizeAll(refs []string) ([]string, error) {
	var out []string
	for _, r := range refs {
		n, err := Normalize(r)
		if err != nil {
			return nil, err
		}
		out = appendUnique(out, n)
	}
	return out, nil
}

func appendUnique(list []string, items ...string) []string {
	for _, it := range items {
		if !slices.Contains(list, it) {
			list = append(list, it)
		}
	}
	return list
}

// store verifies and stores one image and returns its record. On error
// everything this call created is removed. Callers hold s.mu.
func (s *Store) store(ctx context.Context, c candidate) (_ *Record, err error) {
	var newBlobs, newSnaps []string
	defer func() {
		if err == nil {
			return
		}
		if gerr := s.gcNew(newBlobs, newSnaps); gerr != nil {
			s.cfg.Logger.Warn("cleaning up after failed import", "err", gerr)
		}
	}()
	rawCfg, err := c.img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read image config: %w", err)
	}
	cfgName, err := c.img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("read image config digest: %w", err)
	}
	id, created, err := s.blobs.WriteBytes(rawCfg)
	if err != nil {
		return nil, err
	}
	if created {
		newBlobs = append(newBlobs, id)
	}
	if id != cfgName.String() {
		return nil, fmt.Errorf("image config: %w: manifest says %s, content hashes to %s", ErrDigestMismatch, cfgName, id)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return nil, fmt.Errorf("parse image config %s: %w", id, err)
	}
	layers, err := c.img.Layers()
	if err != nil {
		return nil, fmt.Errorf("read layers of %s: %w", id, err)
	}
	if len(layers) != len(cf.RootFS.DiffIDs) {
		return nil, fmt.Errorf("image %s: %d layers but %d diff IDs in its config", id, len(layers), len(cf.RootFS.DiffIDs))
	}
	diffIDs := make([]string, len(layers))
	for i, d := range cf.RootFS.DiffIDs {
		diffIDs[i] = d.String()
	}
	chain := chainIDs(diffIDs)
	var size int64
	for i, l := range layers {
		if !s.snaps.Has(chain[i]) {
			rc, err := l.Uncompressed()
			if err != nil {
				return nil, fmt.Errorf("open layer %s: %w", diffIDs[i], err)
			}
			created, err := s.snaps.Unpack(ctx, chain[i], diffIDs[i], rc)
			rc.Close()
			if err != nil {
				return nil, err
			}
			if created {
				newSnaps = append(newSnaps, chain[i])
			}
		}
		n, err := s.snaps.Size(chain[i])
		if err != nil {
			return nil, err
		}
		size += n
	}
	var manifestDigest string
	if c.manifest != nil {
		d, created, err := s.blobs.WriteBytes(c.manifest)
		if err != nil {
			return nil, err
		}
		if created {
			newBlobs = append(newBlobs, d)
		}
		manifestDigest = d
	}

	r := &Record{
		Image: Image{
			ID:         id,
			Size:       size,
			Entrypoint: cf.Config.Entrypoint,
			Cmd:        cf.Config.Cmd,
			Env:        cf.Config.Env,
			WorkingDir: cf.Config.WorkingDir,
			User:       cf.Config.User,
		},
		ManifestDigest: manifestDigest,
		DiffIDs:        diffIDs,
		ChainIDs:       chain,
	}
	r.Stored = time.Now()
	if old := s.records[id]; old != nil {
		r.Stored = old.Stored
		r.Names = slices.Clone(old.Names)
		if r.ManifestDigest == "" {
			r.ManifestDigest = old.ManifestDigest
		}
	}
	r.Names = appendUnique(r.Names, c.names...)
	// A name moves to the newly imported image.
	for _, other := range s.records {
		if other.ID == id {
			continue
		}
		kept := slices.DeleteFunc(slices.Clone(other.Names), func(n string) bool { return slices.Contains(c.names, n) })
		if len(kept) != len(other.Names) {
			o := cloneRecord(other)
			o.Names = kept
			if err := s.writeRecord(&o); err != nil {
				return nil, err
			}
		}
	}
	if err := s.writeRecord(r); err != nil {
		return nil, err
	}
	return r, nil
}

// gcNew removes blobs and snapshots created by a failed import unless a
// stored record uses them.
func (s *Store) gcNew(blobs, snaps []string) error {
	used := map[string]bool{}
	for _, r := range s.records {
		used[r.ID], used[r.ManifestDigest] = true, true
		for _, c := range r.ChainIDs {
			used[c] = true
		}
	}
	var errs []error
	for _, b := range blobs {
		if !used[b] {
			errs = append(errs, s.blobs.Delete(b))
		}
	}
	for _, c := range snaps {
		if !used[c] {
			errs = append(errs, s.snaps.Remove(c))
		}
	}
	return errors.Join(errs...)
}

package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// ErrNoSpace is joined to errors caused by a full disk.
var ErrNoSpace = errors.New("no space left for the image store")

// Progress receives download progress: bytes of layer blobs fetched so far
// (including what an earlier, interrupted pull left) and in all. It is
// called from several goroutines, but never concurrently.
type Progress func(done, total int64)

// Source is an image to store from a lazy source (a registry).
type Source struct {
	// Image is read layer by layer; every blob is verified against its
	// digest while it is written.
	Image v1.Image
	// Names are the normalized names to give the image.
	Names []string
	// Manifest is the raw manifest of Image.
	Manifest []byte
}

// downloadJobs is how many layers are fetched at once.
const downloadJobs = 3

// Ingest stores src. Layer blobs the store lacks are downloaded into the
// content store first, without the store's lock (several at a time, each
// verified by digest and appearing only complete), then unpacked and
// recorded under the lock as Import does. Blobs that finished survive a
// failed or interrupted ingest, so a retry fetches only what is missing;
// they are deleted once unpacked (the snapshot is the layer's stored form),
// and also when the disk filled up. An image whose layers are all unpacked
// already only gets its names: nothing is downloaded.
func (s *Store) Ingest(ctx context.Context, src Source, progress Progress) (Image, error) {
	m, err := src.Image.Manifest()
	if err != nil {
		return Image{}, fmt.Errorf("read manifest: %w", err)
	}
	cf, err := src.Image.ConfigFile()
	if err != nil {
		return Image{}, fmt.Errorf("read image config: %w", err)
	}
	if len(m.Layers) != len(cf.RootFS.DiffIDs) {
		return Image{}, fmt.Errorf("image has %d layers but %d diff IDs in its config", len(m.Layers), len(cf.RootFS.DiffIDs))
	}
	diffIDs := make([]string, len(m.Layers))
	for i, d := range cf.RootFS.DiffIDs {
		diffIDs[i] = d.String()
	}
	chain := chainIDs(diffIDs)

	var total int64
	var missing []v1.Descriptor
	var done atomic.Int64
	for i, l := range m.Layers {
		if s.snaps.Has(chain[i]) {
			continue
		}
		total += l.Size
		if s.blobs.Has(l.Digest.String()) {
			done.Add(l.Size)
			continue
		}
		missing = append(missing, l)
	}
	var progMu sync.Mutex
	report := func() {
		if progress != nil {
			progMu.Lock()
			progress(done.Load(), total)
			progMu.Unlock()
		}
	}
	report()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(downloadJobs)
	for _, d := range missing {
		g.Go(func() error {
			return s.download(gctx, src.Image, d, func(n int64) { done.Add(n); report() })
		})
	}
	err = g.Wait()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			s.deleteLayerBlobs(m.Layers)
			err = fmt.Errorf("%w: %w", ErrNoSpace, err)
		}
		return Image{}, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	local, err := partial.CompressedToImage(&localImage{s: s, src: src, manifest: m})
	if err != nil {
		return Image{}, err
	}
	r, err := s.store(ctx, candidate{img: local, names: src.Names, manifest: src.Manifest})
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			err = fmt.Errorf("%w: %w", ErrNoSpace, err)
		}
		if !errors.Is(err, context.Canceled) {
			// Unpacking failed for good (full disk, corrupt layer): a retry
			// must not trust these blobs.
			s.deleteLayerBlobs(m.Layers)
		}
		return Image{}, err
	}
	s.deleteLayerBlobs(m.Layers)
	s.cfg.Logger.Info("image pulled", "id", r.ID, "names", r.Names)
	return cloneRecord(r).Image, nil
}

// download fetches one layer blob into the content store.
func (s *Store) download(ctx context.Context, img v1.Image, d v1.Descriptor, add func(int64)) error {
	l, err := img.LayerByDigest(d.Digest)
	if err != nil {
		return fmt.Errorf("layer %s: %w", d.Digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("fetch layer %s: %w", d.Digest, err)
	}
	defer rc.Close()
	var read int64
	cr := &countingReader{ctx: ctx, r: rc, add: func(n int64) { read += n; add(n) }}
	if _, err := s.blobs.Write(d.Digest.String(), cr); err != nil {
		add(-read) // the partial file is gone; a retry starts this layer over
		return fmt.Errorf("fetch layer %s: %w", d.Digest, err)
	}
	return nil
}

func (s *Store) deleteLayerBlobs(layers []v1.Descriptor) {
	for _, l := range layers {
		if err := s.blobs.Delete(l.Digest.String()); err != nil {
			s.cfg.Logger.Warn("deleting layer blob", "digest", l.Digest, "err", err)
		}
	}
}

// countingReader reports bytes read and stops when ctx ends.
type countingReader struct {
	ctx context.Context
	r   io.Reader
	add func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	if n > 0 {
		c.add(int64(n))
	}
	return n, err
}

// localImage serves an image whose config and manifest are in memory and
// whose layer blobs are in the content store (or already unpacked, in
// which case they are never opened).
type localImage struct {
	s        *Store
	src      Source
	manifest *v1.Manifest
}

var _ partial.CompressedImageCore = (*localImage)(nil)

func (l *localImage) RawConfigFile() ([]byte, error) { return l.src.Image.RawConfigFile() }
func (l *localImage) MediaType() (types.MediaType, error) {
	if l.manifest.MediaType != "" {
		return l.manifest.MediaType, nil
	}
	return types.OCIManifestSchema1, nil
}
func (l *localImage) RawManifest() ([]byte, error) { return l.src.Manifest, nil }

func (l *localImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, d := range l.manifest.Layers {
		if d.Digest == h {
			return &blobLayer{s: l.s, desc: d}, nil
		}
	}
	return nil, fmt.Errorf("layer %s is not in the manifest", h)
}

// blobLayer is a compressed layer blob in the content store.
type blobLayer struct {
	s    *Store
	desc v1.Descriptor
}

func (b *blobLayer) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *blobLayer) Size() (int64, error)                { return b.desc.Size, nil }
func (b *blobLayer) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }
func (b *blobLayer) Compressed() (io.ReadCloser, error) {
	p, err := b.s.blobs.Path(b.desc.Digest.String())
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open layer blob %s: %w", b.desc.Digest, err)
	}
	return f, nil
}

package images

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"kedge.dev/kedge/runtime/content"
	"kedge.dev/kedge/runtime/rootfs"
)

// ErrImageNotPresent is wrapped when no stored image matches a reference.
var ErrImageNotPresent = errors.New("image not present")

// Image describes a stored image as the kubelet side needs it.
type Image struct {
	// Names are normalized references ("docker.io/library/nginx:latest").
	Names []string `json:"names"`
	// ID is the digest of the image config ("sha256:...").
	ID string `json:"id"`
	// Size is the unpacked size of all layers in bytes.
	Size int64 `json:"size"`
	// Entrypoint, Cmd, Env, WorkingDir and User come from the image config.
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"workingDir,omitempty"`
	User       string   `json:"user,omitempty"`
}

// Record is what the store keeps per image: the public Image plus its
// layer chain.
type Record struct {
	Image
	// ManifestDigest is the digest of the image manifest when the source had
	// one (OCI layouts); docker archives carry none.
	ManifestDigest string `json:"manifestDigest,omitempty"`
	// Stored is when the image was first stored on this node (for garbage
	// collection of images never used since).
	Stored time.Time `json:"stored,omitempty"`
	// DiffIDs are the uncompressed layer digests, bottom first.
	DiffIDs []string `json:"diffIDs"`
	// ChainIDs name the layer snapshots, bottom first.
	ChainIDs []string `json:"chainIDs"`
}

// Config configures a Store.
type Config struct {
	// Root holds blobs/, snapshots/, images/ and tmp/. Required.
	Root string
	// Logger receives debug and warning logs. Required.
	Logger *slog.Logger
}

// Store holds images. Its methods are safe for concurrent use; imports and
// removals are serialized by one lock (they are rare and disk-bound).
type Store struct {
	cfg     Config
	blobs   *content.Store
	snaps   *rootfs.Snapshots
	dir     string // image records
	tmp     string // scratch for imports
	mu      sync.Mutex
	records map[string]*Record // by ID
}

// New opens (or creates) the store under cfg.Root and loads its records.
func New(cfg Config) (*Store, error) {
	if cfg.Root == "" || cfg.Logger == nil {
		return nil, errors.New("image store: Root and Logger are required")
	}
	blobs, err := content.New(cfg.Root)
	if err != nil {
		return nil, err
	}
	if err := blobs.CleanIngest(); err != nil {
		return nil, err
	}
	snaps, err := rootfs.NewSnapshots(filepath.Join(cfg.Root, "snapshots"))
	if err != nil {
		return nil, err
	}
	s := &Store{
		cfg: cfg, blobs: blobs, snaps: snaps,
		dir:     filepath.Join(cfg.Root, "images"),
		tmp:     filepath.Join(cfg.Root, "tmp"),
		records: map[string]*Record{},
	}
	if err := os.RemoveAll(s.tmp); err != nil {
		return nil, fmt.Errorf("clean import scratch: %w", err)
	}
	for _, d := range []string{s.dir, s.tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create image store: %w", err)
		}
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// load (re)reads the image records from disk, so that images another
// process (`kedge image import|pull|rm`) stored or removed become visible.
// Callers hold s.mu or own s exclusively.
func (s *Store) load() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("read image records: %w", err)
	}
	recs := map[string]*Record{}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("read image record: %w", err)
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			s.cfg.Logger.Warn("skipping unreadable image record", "file", e.Name(), "err", err)
			continue
		}
		recs[r.ID] = &r
	}
	s.records = recs
	return nil
}

// Snapshots returns the snapshot store, for mounting root filesystems.
func (s *Store) Snapshots() *rootfs.Snapshots { return s.snaps }

// Get returns the record matching ref: a name (normalized first), an image
// ID ("sha256:<hex>" or bare hex), or "repo@sha256:<manifest digest>".
func (s *Store) Get(ref string) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.find(ref)
	if err != nil {
		return Record{}, err
	}
	return cloneRecord(r), nil
}

func (s *Store) find(ref string) (*Record, error) {
	r, err := s.findLoaded(ref)
	if err == nil {
		if _, serr := os.Stat(s.recordPath(r.ID)); serr == nil {
			return r, nil
		}
	} else if !errors.Is(err, ErrImageNotPresent) {
		return nil, err
	}
	// Another process may have stored, retagged or removed it.
	if lerr := s.load(); lerr != nil {
		return nil, lerr
	}
	return s.findLoaded(ref)
}

func (s *Store) findLoaded(ref string) (*Record, error) {
	if id, ok := isImageID(ref); ok {
		if r := s.records[id]; r != nil {
			return r, nil
		}
		return nil, fmt.Errorf("image %s: %w", ref, ErrImageNotPresent)
	}
	name, err := Normalize(ref)
	if err != nil {
		return nil, err
	}
	repo, digest, byDigest := strings.Cut(name, "@")
	for _, r := range s.records {
		if byDigest {
			if slices.Contains(r.Names, name) { // pulled by this digest
				return r, nil
			}
			if r.ManifestDigest == digest || r.ID == digest {
				for _, n := range r.Names {
					if strings.HasPrefix(n, repo+":") {
						return r, nil
					}
				}
			}
			continue
		}
		if slices.Contains(r.Names, name) {
			return r, nil
		}
	}
	return nil, fmt.Errorf("image %s: %w", ref, ErrImageNotPresent)
}

// List returns all records sorted by first name, then ID.
func (s *Store) List() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.load(); err != nil {
		s.cfg.Logger.Warn("reloading image records", "err", err)
	}
	out := make([]Record, 0, len(s.records))
	for _, r := range s.records {
		out = append(out, cloneRecord(r))
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := firstName(out[i]), firstName(out[j])
		if a != b {
			return a < b
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func firstName(r Record) string {
	if len(r.Names) == 0 {
		return "~" // unnamed images sort last
	}
	return r.Names[0]
}

func cloneRecord(r *Record) Record {
	c := *r
	c.Names = slices.Clone(r.Names)
	c.Entrypoint = slices.Clone(r.Entrypoint)
	c.Cmd = slices.Clone(r.Cmd)
	c.Env = slices.Clone(r.Env)
	c.DiffIDs = slices.Clone(r.DiffIDs)
	c.ChainIDs = slices.Clone(r.ChainIDs)
	return c
}

// Remove removes ref. A name that is one of several names of an image only
// untags it; an ID or an image's last name deletes the image, its config
// and manifest blobs and every snapshot that no remaining image uses and
// that inUse does not report (chain IDs of containers' root filesystems).
func (s *Store) Remove(ref string, inUse func(chainID string) bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.find(ref)
	if err != nil {
		return err
	}
	if _, byID := isImageID(ref); !byID && len(r.Names) > 1 {
		name, _ := Normalize(ref)
		r.Names = slices.DeleteFunc(r.Names, func(n string) bool { return n == name })
		return s.writeRecord(r)
	}
	if err := os.Remove(s.recordPath(r.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove image %s: %w", r.ID, err)
	}
	delete(s.records, r.ID)
	return s.gc(r.ID, r.ManifestDigest, r.ChainIDs, inUse)
}

// gc deletes the given blobs and chain snapshots unless a record or inUse
// still refers to them. Callers hold s.mu.
func (s *Store) gc(configDigest, manifestDigest string, chain []string, inUse func(string) bool) error {
	used := map[string]bool{}
	for _, r := range s.records {
		used[r.ID], used[r.ManifestDigest] = true, true
		for _, c := range r.ChainIDs {
			used[c] = true
		}
	}
	var errs []error
	for _, d := range []string{configDigest, manifestDigest} {
		if d != "" && !used[d] {
			errs = append(errs, s.blobs.Delete(d))
		}
	}
	for _, c := range chain {
		if used[c] || (inUse != nil && inUse(c)) {
			continue
		}
		errs = append(errs, s.snaps.Remove(c))
	}
	return errors.Join(errs...)
}

func (s *Store) recordPath(id string) string {
	return filepath.Join(s.dir, strings.TrimPrefix(id, "sha256:")+".json")
}

// writeRecord persists r atomically. Callers hold s.mu.
func (s *Store) writeRecord(r *Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, ".rec-*")
	if err != nil {
		return fmt.Errorf("write image record: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write image record: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write image record: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.recordPath(r.ID)); err != nil {
		return fmt.Errorf("write image record: %w", err)
	}
	s.records[r.ID] = r
	return nil
}

// ErrDigestMismatch is wrapped when content does not match its digest.
var ErrDigestMismatch = content.ErrDigestMismatch

func chainIDs(diffIDs []string) []string { return rootfs.ChainIDs(diffIDs) }

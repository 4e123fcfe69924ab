// Package content is a content-addressed blob store: each blob lives at
// blobs/sha256/<hex> under the store's root, is verified against its digest
// while it is written, and appears only complete (temp file + rename).
package content

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ErrDigestMismatch is wrapped when written content does not hash to the
// digest it was announced with.
var ErrDigestMismatch = errors.New("content digest mismatch")

// ErrNotFound is wrapped when a blob is not in the store.
var ErrNotFound = errors.New("blob not found")

// ErrInvalidDigest is wrapped for digests that are not "sha256:<64 hex>".
var ErrInvalidDigest = errors.New("invalid digest")

// Store keeps blobs under Root/blobs/sha256. It is safe for concurrent use
// by one or more processes: writers never expose partial files and two
// writers of the same blob both succeed.
type Store struct {
	root string
}

// New returns a store rooted at root, creating its directories.
func New(root string) (*Store, error) {
	for _, d := range []string{filepath.Join(root, "blobs", "sha256"), filepath.Join(root, "ingest")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create content store: %w", err)
		}
	}
	return &Store{root: root}, nil
}

// ParseDigest checks that d is "sha256:<64 lowercase hex>" and returns the hex.
func ParseDigest(d string) (string, error) {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 {
		return "", fmt.Errorf("%w: %q", ErrInvalidDigest, d)
	}
	if _, err := hex.DecodeString(h); err != nil || strings.ToLower(h) != h {
		return "", fmt.Errorf("%w: %q", ErrInvalidDigest, d)
	}
	return h, nil
}

// Path returns where the blob with digest d lives (whether or not it exists).
func (s *Store) Path(d string) (string, error) {
	h, err := ParseDigest(d)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.root, "blobs", "sha256", h), nil
}

// Has reports whether the blob is present.
func (s *Store) Has(d string) bool {
	p, err := s.Path(d)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// Write stores the content of r under digest d, verifying it. It reports
// whether the blob was newly created (false if it was already present). On
// any error nothing is left in the store.
func (s *Store) Write(d string, r io.Reader) (created bool, err error) {
	p, err := s.Path(d)
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(p); err == nil {
		// Drain nothing: the caller's reader is simply not needed.
		return false, nil
	}
	tmp, err := os.CreateTemp(filepath.Join(s.root, "ingest"), "blob-*")
	if err != nil {
		return false, fmt.Errorf("write blob %s: %w", d, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), r); err != nil {
		return false, fmt.Errorf("write blob %s: %w", d, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != d {
		return false, fmt.Errorf("write blob %s: %w: content hashes to %s", d, ErrDigestMismatch, got)
	}
	if err := tmp.Sync(); err != nil {
		return false, fmt.Errorf("write blob %s: %w", d, err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("write blob %s: %w", d, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return false, fmt.Errorf("write blob %s: %w", d, err)
	}
	return true, nil
}

// WriteBytes stores b under the digest it hashes to and returns that digest.
func (s *Store) WriteBytes(b []byte) (digest string, created bool, err error) {
	sum := sha256.Sum256(b)
	d := "sha256:" + hex.EncodeToString(sum[:])
	created, err = s.Write(d, strings.NewReader(string(b)))
	return d, created, err
}

// ReadBytes returns the whole blob d.
func (s *Store) ReadBytes(d string) ([]byte, error) {
	p, err := s.Path(d)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read blob %s: %w", d, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	return b, nil
}

// Delete removes blob d; a missing blob is not an error.
func (s *Store) Delete(d string) error {
	p, err := s.Path(d)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	return nil
}

// CleanIngest removes temp files left by a writer that crashed.
func (s *Store) CleanIngest() error {
	dir := filepath.Join(s.root, "ingest")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("clean ingest: %w", err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("clean ingest: %w", err)
		}
	}
	return nil
}
